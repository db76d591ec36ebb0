"""Outside review 10, claim 1's diagnosis (docs/troubleshooting.md): the reasons and the hint a
timeout gives say DNS only when DNS is the cause. Past a cut-short Service answer (a Job of
more pods than one DNS message lists), pods whose names DNS answers but whose agents are down
(DNS fine, the peers the cause) are reported by pod 0 as "not in DNS", with the hint that the
pods are not published. Real agent processes on loopback; the DNS server counts each pod's
queries and cuts the Service's answer (``tests/support/podsdns.py``).
"""

from __future__ import annotations

import pytest

from tests.faults.conftest import NAMESPACE, SERVICE, ZONE, AgentProcess, Job, agent_argv
from tests.support.podsdns import CutServiceDNS

pytestmark = pytest.mark.timeout(60)

PEERS, DOWN = 8, (4, 5, 6, 7)


def test_published_pods_whose_agents_are_down_past_a_cut_are_not_called_not_in_dns(
    processes: list[AgentProcess],
) -> None:
    """Every pod's name is published; the Service's answer lists pods 0 and 1 only (cut).
    Pods 4-7's agents never start (their addresses refuse), pods 0-3 wait 20 s.

    Seen: pod 0 exits 3 with "missing example-job-4…: not in DNS: not among the 2 addresses
    of the Service" for each of pods 4-7, and "hint: the missing peers are not in DNS: their
    pods may not have started yet (check parallelism and quota), or are not Ready without
    publishNotReadyAddresses: true" (after 27 s too). Pod 0 never asked pod 4's name, the
    lowest pod not vouched for ("if the wait goes on, pod 0 checks by name only the lowest
    pod not vouched for"); its ring neighbour pod 3 says "127.0.x.5: connect to port …:
    refused" for it. A user of a Job past ~4,090 pods is sent to check DNS publication when
    the pods are published and their agents are what is down."""
    with CutServiceDNS(PEERS, f"{SERVICE}.{NAMESPACE}.svc.{ZONE}", ()) as dns:
        job = Job(dns, PEERS)
        job.publish()
        dns.listed = (job.address(0), job.address(1))
        for i in range(PEERS):
            if i not in DOWN:
                argv = agent_argv(job, "wait", i, "--timeout", "20s")
                argv[argv.index("--dns-server") + 1] = dns.server_for(i)
                processes.append(AgentProcess(argv))
        codes = [p.finish(timeout=45) for p in processes]
    assert codes == [3, 3, 3, 3]
    report = [line for _, line in processes[0].lines if "error:" in line]
    assert not [line for line in report if "not in DNS" in line], "".join(report)
