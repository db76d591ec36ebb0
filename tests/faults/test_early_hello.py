"""A replacement's hello heard before its index is reached, with real agent processes on
loopback and a DNS server for each view of the cluster (tests/sim/test_early_hello.py has the
simulator's schedules that found it; ``agent.core.sightings`` the fix).
"""

from __future__ import annotations

import pytest

from tests.faults.conftest import AgentProcess, Job, agent_argv
from tests.support.faultdns import FaultDNS

pytestmark = pytest.mark.timeout(90)


def _agent(processes: list[AgentProcess], job: Job, i: int, *, at: str = "") -> AgentProcess:
    """Pod ``i``'s agent in wait mode, asking ``job``'s DNS, listening at ``at`` if given."""
    argv = agent_argv(job, "wait", i, "--timeout", job.timeout)
    if at:
        argv[argv.index("--listen") + 1] = at
    agent = AgentProcess(argv)
    processes.append(agent)
    return agent


def test_a_replacement_heard_before_its_index_was_reached_is_reached_in_the_end(
    fault_dns: FaultDNS, processes: list[AgentProcess]
) -> None:
    """Pods 0 and 1 wait for pod 2. Pod 2's old instance is up but not listed yet; its
    replacement starts at a new address and says hello to both from there. Then the
    coordinator's DNS lists the new address, while pod 1's (a CoreDNS replica behind) lists
    the old one, and pod 1 reaches the old instance; the old one ends, and pod 1's DNS catches
    up. All three pass: pod 1 kept the early hello as a sighting, checked once it had reached
    index 2 elsewhere. (It was dropped: pod 1's view named the old instance for ever, its
    arrival never matched the coordinator's, and all exited 3 at the timeout.)"""
    job = Job(fault_dns, 3, timeout="20s")
    new = job.address(5)
    with FaultDNS() as lagging:
        behind = Job(lagging, 3, timeout=job.timeout, net=job.net, port=job.port)
        job.publish(0, 1)
        behind.publish(0, 1)
        coordinator = _agent(processes, job, 0)
        member = _agent(processes, behind, 1)
        coordinator.wait_line(f"reached {job.fqdn(1)}")
        old = _agent(processes, job, 2)
        old.wait_line(f"reached {job.fqdn(1)}")
        replaced = _agent(processes, job, 2, at=new)
        replaced.wait_line(f"reached {job.fqdn(1)}")
        member.wait_line(f"contacts come from {new}")
        job.move(2, new)
        behind.move(2, job.address(2))
        member.wait_line("reached all 3 peers")
        old.stop()
        behind.move(2, new)
        codes = [agent.finish() for agent in (coordinator, member, replaced)]
    assert codes == [0, 0, 0], member.stderr
    assert "restarted" in member.stderr, member.stderr
