"""A Service answer cut short (issue 22 items 1 and 7), with real agent processes on loopback.

A Service of more pods than one DNS message holds gets its answer cut (over UDP TC and no
records, over TCP the first few addresses, TC set). Each pod then asks DNS only its own name,
its coordinator's and its ring neighbour's, and learns the others' addresses from the
coordinator (``agent.core.vouching``). Each pod asks on a DNS port of its own
(``tests.support.podsdns``), one thread answering them all, so the test counts what every pod
asked: a budget in queries, not a time.
"""

from __future__ import annotations

import json

import pytest

from tests.faults.conftest import NAMESPACE, SERVICE, ZONE, AgentProcess, Job, Record, agent_argv
from tests.support.podsdns import CutServiceDNS

SERVICE_FQDN = f"{SERVICE}.{NAMESPACE}.svc.{ZONE}"
PEERS, CUT = 24, 8
#: the server's CPU per answer: 200 answers a second, so the Job's first burst of queries
#: (about 400) queues up and its tail times out, as at a CoreDNS instance that falls behind
SERVICE_TIME = 0.005
#: what a pod asked before it learnt its peers from the coordinator, at least: its own name, the
#: Service over UDP (TC) then over TCP, and each peer the cut answer leaves out by name (16 of
#: the 23); measured, 40-180 a pod
BY_NAME_FLOOR = 1 + 2 + (PEERS - CUT)
#: the budget now, whatever N: its own name, the coordinator's and its ring neighbour's (each
#: again while its agent does not listen yet), a few Service rounds (two queries each: UDP,
#: then TCP), and a lookup or two where a report came late
BUDGET = 16


@pytest.mark.timeout(150)
def test_a_cut_service_answer_releases_every_pod_asking_dns_a_few_times_each(
    processes: list[AgentProcess], record: Record
) -> None:
    """24 pods, the Service's answer cut at 8 addresses, a DNS server that falls behind: every
    pod passes the barrier, having asked DNS at most ``BUDGET`` times (fewer than the 19 that
    asking for every peer left out by name takes at least), and says once that the answer is
    cut short."""
    with CutServiceDNS(PEERS, SERVICE_FQDN, (), service_time=SERVICE_TIME) as dns:
        job = Job(dns, PEERS, timeout="90s")
        job.publish()
        dns.listed = tuple(job.address(i) for i in range(CUT))
        for i in range(PEERS):
            argv = agent_argv(job, "wait", i, "--timeout", "90s", "--log-format", "json")
            argv[argv.index("--dns-server") + 1] = dns.server_for(i)
            processes.append(AgentProcess(argv))
        codes = [p.finish(120) for p in processes]
        asked = [dns.per_pod[i] for i in range(PEERS)]
    assert codes == [0] * PEERS, [p.stderr[-600:] for p in processes if p.proc.returncode][:2]
    for p in processes:
        events = [json.loads(line).get("event") for line in p.stderr.splitlines()]
        assert events.count("truncated") == 1, p.stderr[-600:]
    assert max(asked) <= BUDGET < BY_NAME_FLOOR, asked
    record(queries_max=max(asked), queries_mean=round(sum(asked) / PEERS, 1), budget=BUDGET)
