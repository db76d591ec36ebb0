"""An outside review: a group coordinator replaced at a new address while its old instance stays
up (a terminating pod), past a cut Service answer (docs/at-scale.md, "Membership and DNS"), with
real agent processes on loopback and the fault DNS. test_stale_coordinator is the same fault for
index 0 without groups; without the cut this case passes.

Fails as well with the agent changes of 80cfea3 and c2a0365 reverted: older than them.
"""

from __future__ import annotations

import time

import pytest

from tests.faults.conftest import AgentProcess, Job
from tests.faults.test_silent_claims import _start
from tests.faults.test_stale_coordinator import _session_open
from tests.support.faultdns import FaultDNS

pytestmark = pytest.mark.timeout(120)

#: well inside the pods' --timeout: a release stuck until it would be a failure
RELEASED_WITHIN = 12.0
SPARSE = ("--reach", "sparse", "--reach-degree", "4")  # 9 pods: groups 0-2, 3-5, 6-8


def test_a_live_old_group_coordinator_past_a_cut_answer_stalls_nobody(
    fault_dns: FaultDNS, processes: list[AgentProcess]
) -> None:
    """Pods 0-7 start (the Service's answer cut to pod 0's address); once pod 4 has its session
    with group coordinator 3 at A, pod 3 is replaced at B (DNS moves its name) and the old
    instance stays up; once the new pod 3 has reached pod 4, pod 8 starts. Every pod, the new
    pod 3 included, must be released within seconds, and the old instance by nobody (as
    test_stale_coordinator asks of index 0). The root releases everyone with the old pod 3
    counted for group 3-5 (the old instance logs "barrier released"); the new pod 3 waits for
    "example-job-4 (not connected), example-job-5 (not connected)", both already released and
    gone, and exits 3 at --timeout."""
    job = Job(fault_dns, 9, timeout="30s")
    job.publish(*range(8))

    def cut() -> None:
        fault_dns.fault("cut", job.service, addresses=[job.address(0)])

    cut()
    pods = {i: _start(processes, job, i, *SPARSE) for i in range(8) if i != 3}
    old3 = _start(processes, job, 3, *SPARSE, "--timeout", "90s")  # outlives everyone
    _session_open(job.address(4), job.address(3), job.port)
    job.move(3, job.address(30))
    cut()
    pods[3] = _start(processes, job, 3, *SPARSE, at=job.address(30))
    pods[3].wait_line(f"reached {job.fqdn(4)}")
    job.publish(8)
    cut()
    began = time.monotonic()
    pods[8] = _start(processes, job, 8, *SPARSE)
    for i in sorted(pods):
        pods[i].wait_line("barrier released", timeout=RELEASED_WITHIN)
    assert time.monotonic() - began < RELEASED_WITHIN
    assert [pods[i].finish(timeout=RELEASED_WITHIN) for i in sorted(pods)] == [0] * 9
    assert "barrier released" not in old3.stderr
