"""An outside review of how a coordinator treats a member index claimed by a connection that
says nothing (docs/at-scale.md, "Membership and DNS": the look-around skips members connected
and silent, and of held members asks only the lowest). Real agent processes on loopback, the
fault DNS, and a second DNS server for one pod's stale node cache.

All three fail as well with the agent changes of 80cfea3 and c2a0365 reverted (the first two
checked with both reverted, the third with c2a0365's): older than the changes they attack.
"""

from __future__ import annotations

import signal
import time

import pytest

from tests.faults.conftest import AgentProcess, Job, agent_argv
from tests.faults.test_stale_coordinator import _session_open
from tests.support.faultdns import FaultDNS

pytestmark = pytest.mark.timeout(120)

#: well inside the pods' --timeout: a release stuck until it would be a failure
RELEASED_WITHIN = 12.0


def _start(
    processes: list[AgentProcess], job: Job, i: int, *extra: str, at: str = "", dns: str = ""
) -> AgentProcess:
    argv = agent_argv(job, "wait", i, "--timeout", job.timeout, *extra)
    if at:
        argv[argv.index("--listen") + 1] = at
    if dns:
        argv[argv.index("--dns-server") + 1] = dns
    agent = AgentProcess(argv)
    processes.append(agent)
    return agent


def test_a_stuck_old_members_silent_session_does_not_keep_the_barrier_closed(
    fault_dns: FaultDNS, processes: list[AgentProcess]
) -> None:
    """Pod 0 is replaced at B while its old instance at A stays up (as in
    test_stale_coordinator); pod 1 opens its session with B and, before it can arrive (pod 2
    has not started), its process is stopped: a stuck pod, its connection open and silent.
    Pod 1 is replaced at C; the new pod 1's node still gives A for pod 0's name until the new
    pod 1 has waited 5 s, then B. Pod 2 starts with the new pod 1.

    Every live pod is reached by every other once DNS is right, so the new pod 0, pod 1 and
    pod 2 must be released within seconds of it. They are not: the new pod 0 waits for
    "example-job-1 (connected, not arrived yet)", the stuck old instance's session, and the new
    pod 1 waits for the verdict of the old pod 0, until all exit 3 at --timeout."""
    job = Job(fault_dns, 3, timeout="40s")
    job.publish(0, 1)
    a, b, c = job.address(0), job.address(6), job.address(7)
    old0 = _start(processes, job, 0, "--timeout", "90s")  # the old instance outlives everyone
    stuck = _start(processes, job, 1)
    _session_open(job.address(1), a, job.port)
    job.move(0, b)
    new0 = _start(processes, job, 0, at=b)
    _session_open(job.address(1), b, job.port)
    stuck.proc.send_signal(signal.SIGSTOP)
    try:
        job.move(1, c)
        job.publish(2)
        with FaultDNS() as node:  # the new pod 1's DNS: pod 0's name still at A
            node.set(job.fqdn(0), a)
            node.set(job.fqdn(1), c)
            node.set(job.fqdn(2), job.address(2))
            node.set(job.service, a, c, job.address(2))
            pod1 = _start(processes, job, 1, at=c, dns=node.server)
            pod2 = _start(processes, job, 2)
            pod1.wait_line(f"reached {job.fqdn(0)} at {a}")
            pod1.wait_line("waiting 5s")  # DNS stale for a while
            node.set(job.fqdn(0), b)  # the node's cache catches up
            node.set(job.service, b, c, job.address(2))
            began = time.monotonic()
            for agent in (new0, pod1, pod2):
                agent.wait_line("barrier released", timeout=RELEASED_WITHIN)
            assert time.monotonic() - began < RELEASED_WITHIN
            codes = [agent.finish(timeout=RELEASED_WITHIN) for agent in (new0, pod1, pod2)]
    finally:
        stuck.proc.send_signal(signal.SIGCONT)
    assert codes == [0, 0, 0]
    assert "barrier released" not in old0.stderr


def test_an_outsider_claiming_a_missing_index_past_a_cut_answer_names_only_that_pod(
    fault_dns: FaultDNS, processes: list[AgentProcess]
) -> None:
    """Eight pods, no token, the Service's answer cut to pod 0's address; pod 3 never starts,
    and an outsider (an agent claiming index 3 from 127.0.<net>.100, which no DNS answer gives)
    connects to pod 0 first. Every pod must time out (exit 3: pod 3 is missing) and pod 0's
    timeout must name pod 3 alone, as it does without the outsider. It names pods 3 to 7
    missing, four of them running at their own addresses, "connected from <their own
    address>, which DNS does not list for it", with the hint to check their --listen: the
    outsider's held claim of index 3 stops the chain of ring reports for the pods above it."""
    job = Job(fault_dns, 8, timeout="20s")
    job.publish()
    fault_dns.fault("cut", job.service, addresses=[job.address(0)])
    outsider = _start(processes, job, 3, "--timeout", "60s", at=job.address(99))
    outsider.wait_line("reached")
    pods = {i: _start(processes, job, i) for i in range(8) if i != 3}
    codes = {i: pods[i].finish(timeout=40) for i in sorted(pods)}
    assert "barrier released" not in outsider.stderr
    assert set(codes.values()) == {3}
    missing = [line for line in pods[0].stderr.splitlines() if "error:   missing " in line]
    assert [line.split("missing ")[1].split(".")[0] for line in missing] == ["example-job-3"]
    # Pod 0 cannot tell this outsider from pod 3's agent talking from another interface (the
    # next test): the hint names both, not --listen alone.
    assert "if its pod is not running, another process claims its index" in pods[0].stderr


def test_a_member_at_an_address_its_name_does_not_give_past_a_cut_answer_names_only_that_pod(
    fault_dns: FaultDNS, processes: list[AgentProcess]
) -> None:
    """As above without an outsider: eight pods, the Service's answer cut to pod 0's address,
    pod 3 running at 127.0.<net>.51 while DNS gives its name its old address (stale for the
    whole run; nothing listens there). Every pod times out (exit 3), rightly, and pod 0 must
    name pod 3 alone: DNS gives pods 4 to 7 the addresses they run at. It names pods 3 to 7,
    each "connected from <its address>, which DNS does not list for it", with the hint to
    check their --listen: their claims wait for the chain of ring reports, which stops at 3,
    and nobody asks their names."""
    job = Job(fault_dns, 8, timeout="20s")
    job.publish()
    fault_dns.fault("cut", job.service, addresses=[job.address(0)])
    pods = {i: _start(processes, job, i, at=job.address(50) if i == 3 else "") for i in range(8)}
    codes = {i: pods[i].finish(timeout=40) for i in sorted(pods)}
    assert set(codes.values()) == {3}
    missing = [line for line in pods[0].stderr.splitlines() if "error:   missing " in line]
    assert [line.split("missing ")[1].split(".")[0] for line in missing] == ["example-job-3"]
