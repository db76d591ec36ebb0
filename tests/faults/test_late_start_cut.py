"""A pod whose own workload port opens late, past a cut Service answer (outside review 7, item
3): with ``--probe tcp:PORT`` the pod asked DNS for its own name at every retry of its own port,
about two queries a second for as long as the port was closed (37 over 20 s, 77 over 40 s, 178
over 90 s in sidecar mode), while its peers asked that name a handful of times. Its own name
giving its own address (--listen, or kubelet's /etc/hosts), the refusal is now reused there
as a peer's is, paced in total (``agent.core.agent._attempt``)."""

from __future__ import annotations

import socket
import time

import pytest

from tests.faults.conftest import NAMESPACE, SERVICE, ZONE, AgentProcess, Job, Record, agent_argv
from tests.support.podsdns import CutServiceDNS

SERVICE_FQDN = f"{SERVICE}.{NAMESPACE}.svc.{ZONE}"
PEERS, CUT, LATE = 6, 2, 5
#: how long after the agents start the late pod's workload port opens
DELAY = 20.0
#: the queries for one name a pod may make over DELAY if they back off as the other names'
#: do (5 s doubling: at 0, 5, 15 s, and one after the port opens), with room to spare; its
#: peers asked the late pod's name 4-5 times over 40 s
OWN_NAME_BUDGET = 10


@pytest.mark.timeout(90)
def test_a_pod_whose_own_workload_port_opens_late_asks_its_own_name_a_bounded_number_of_times(
    processes: list[AgentProcess], record: Record
) -> None:
    """Six pods, the Service cut at 2 addresses, ``--probe tcp:PORT``; pod 5's workload port
    opens 20 s after every agent started. Every pod is released, and pod 5 asks its own name
    no more often than its peers ask the names that refuse (it asked ~38 times, 2 a second)."""
    with CutServiceDNS(PEERS, SERVICE_FQDN, ()) as dns:
        job = Job(dns, PEERS, timeout="60s")
        job.publish()
        dns.listed = tuple(job.address(i) for i in range(CUT))
        workload = job.port + 2
        listeners = [socket.create_server((job.address(i), workload)) for i in range(LATE)]
        try:
            for i in range(PEERS):
                argv = agent_argv(job, "wait", i, "--timeout", "60s", "--probe", f"tcp:{workload}")
                argv[argv.index("--dns-server") + 1] = dns.server_for(i)
                processes.append(AgentProcess(argv))
            time.sleep(DELAY)  # the workload's start: nothing the test could await
            listeners.append(socket.create_server((job.address(LATE), workload)))
            codes = [p.finish(60) for p in processes]
        finally:
            for s in listeners:
                s.close()
        own = dns.per_name[(LATE, job.fqdn(LATE) + ".")]
        others = [dns.per_name[(i, job.fqdn(LATE) + ".")] for i in range(LATE)]
        asked = [dns.per_pod[i] for i in range(PEERS)]
    record(own_name_queries=own, peers_queries_of_it=others, asked=asked)
    assert codes == [0] * PEERS, [p.stderr[-800:] for p in processes if p.proc.returncode][:2]
    assert own <= OWN_NAME_BUDGET, (own, others, asked)
