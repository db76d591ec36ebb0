"""On a sparse graph whose Service answer is whole (not cut), what a waiting pod asks DNS must
not grow with the wait (review 11, item 3).

docs/at-scale.md: "What a pod asks while it waits no longer grows with the wait", with a
probe that says hello, "the attempts go on at the addresses that refused, without DNS". The
rounds that stop after ``Timing.cut_rounds`` are only those past a cut answer; a Service
answer that fits one message (any Job between the sparse default's 257 pods and the ~4,000 a
64 KiB TCP answer holds) is asked again about every 0.75 s for as long as the pod waits, by
either driver: pod 0 of 8 asked the Service 85-88 times in 65 s; pod 0 of 1,000 (every other
address refusing, the answer 16 KiB over TCP) 42 times in 40 s, every pod of such a Job at once.
Here: 20-22 queries in the 15 s window, for the assertion's 3.

Pod 0 of 8 (``--reach sparse --reach-degree 4``) waits while the seven others' addresses refuse
(published, agents not up yet). Between its progress lines at 10 s and 25 s it should ask DNS
next to nothing: every name has been answered and every target refuses.
"""

from __future__ import annotations

import pytest

from tests.faults.conftest import AgentProcess, Job, agent_argv
from tests.support.faultdns import FaultDNS

pytestmark = pytest.mark.timeout(90)

PEERS, DEGREE = 8, 4


@pytest.mark.parametrize("driver", ["anyio", "selectors"])
def test_a_waiting_pod_asks_dns_nothing_more_on_a_whole_answer(
    fault_dns: FaultDNS, processes: list[AgentProcess], driver: str
) -> None:
    job = Job(fault_dns, PEERS, timeout="40s")
    job.publish()
    argv = agent_argv(job, "wait", 0, "--reach", "sparse", "--reach-degree", str(DEGREE))
    pod = AgentProcess([*argv, "--driver", driver])
    processes.append(pod)
    start = pod.wait_line("waiting 10s", timeout=30)
    end = pod.wait_line("waiting 25s", timeout=30)
    asked = [q for q in list(fault_dns.log) if start <= q.at <= end]
    pod.stop()
    by_name = sorted({(q.name, q.transport) for q in asked})
    assert len(asked) <= 3, f"{len(asked)} queries in 15 s of waiting: {by_name}"
