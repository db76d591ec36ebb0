"""Outside review 7, item 1: past a cut Service answer, an outsider's claim of a missing pod's
index (refuted by that index's name) must not stop the coordinator's chain of checks: the
timeout names exactly the missing pod, not every member above it.

Narrow: it shows at a --timeout within ~10-20 s of the claim (Timing.vouch_wait is 10 s, then
one index is checked at a time); at 20 s, 25 s or 40 s pod 0 names pod 3 alone, and a claim
that comes after the members were counted (22 s into a 30 s timeout) uncounts nobody. Without
the refuted claim (pod 3 simply absent) a 10 s timeout names pod 3 alone."""

from __future__ import annotations

import re
import socket

import pytest

from agent.protocol.wire import Hello, Role, encode
from tests.faults.conftest import AgentProcess, Job
from tests.faults.test_admission import _identity
from tests.faults.test_silent_claims import _start
from tests.faults.test_stale_coordinator import _session_open
from tests.support.faultdns import FaultDNS

pytestmark = pytest.mark.timeout(60)

PEERS, ABSENT, OUTSIDER = 8, 3, 23  # job.address(23): never listed by DNS


def _missing(stderr: str) -> list[str]:
    return re.findall(r"error:   missing (example-job-\d+)\.", stderr)


def test_an_outsiders_claim_of_a_missing_index_past_a_cut_names_only_that_pod(
    fault_dns: FaultDNS, processes: list[AgentProcess]
) -> None:
    """Eight pods, the Service's answer cut to pod 0's address; pod 3 never starts. Once every
    other pod's session with pod 0 is open, an outsider opens a member session to pod 0 claiming
    index 3 (its name gives pod 3's address, not the outsider's). At the timeout pod 0 must name
    example-job-3 alone, as it does without the outsider. It names example-job-3 through 7:
    the members above the refuted claim are held ("connected from 127.0.x.5, which DNS does not
    list for it ... not in DNS: not among the 1 addresses of the Service"), their names not
    asked in 10 s, though each talks from the address its name gives. It is slow, not stuck:
    with --timeout 20s or 40s pod 0 names example-job-3 alone, and pod 3 starting 1 s after
    the outsider is released with everyone in under a second."""
    job = Job(fault_dns, PEERS, timeout="10s")
    job.publish()
    fault_dns.fault("cut", job.service, addresses=[job.address(0)])
    pods = {i: _start(processes, job, i) for i in range(PEERS) if i != ABSENT}
    for i in sorted(pods)[1:]:
        _session_open(job.address(i), job.address(0), job.port)
    hello = encode(Hello(_identity(job, ABSENT), Role.MEMBER, "ab" * 16))
    source = (job.address(OUTSIDER), 0)
    with socket.create_connection((job.address(0), job.port), 5, source) as outsider:
        outsider.sendall(hello)
        code = pods[0].finish(30)
    assert code == 3, pods[0].stderr[-1500:]
    assert _missing(pods[0].stderr) == [f"{job.job}-{ABSENT}"], pods[0].stderr[-2500:]


def test_a_member_talking_from_an_address_its_name_does_not_give_past_a_cut_names_only_it(
    fault_dns: FaultDNS, processes: list[AgentProcess]
) -> None:
    """The same with no outsider: pod 3's agent listens (and dials) from 127.0.x.14, which its
    name does not give (another interface). At the timeout pod 0 must name example-job-3
    alone; it names example-job-3 through 7."""
    job = Job(fault_dns, PEERS, timeout="10s")
    job.publish()
    fault_dns.fault("cut", job.service, addresses=[job.address(0)])
    pods = {i: _start(processes, job, i) for i in range(PEERS) if i != ABSENT}
    pods[ABSENT] = _start(processes, job, ABSENT, at=job.address(13))
    assert pods[0].finish(30) == 3, pods[0].stderr[-1500:]
    assert _missing(pods[0].stderr) == [f"{job.job}-{ABSENT}"], pods[0].stderr[-2500:]
