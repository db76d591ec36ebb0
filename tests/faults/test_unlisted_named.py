"""A pod heard from an address DNS does not list is named at the timeout with every probe kind
(an outside review): real agent processes on loopback and the fault DNS.

tests/faults/test_admission.py checks the line with ``--probe dns``, where the coordinator has
reached every name and waits only for the barrier; with the default probe (the agent's hello)
the coordinator has not reached the name at all, and its timeout line spoke only of the listed
address.
"""

from __future__ import annotations

import pytest

from tests.faults.conftest import AgentProcess, Job, agent_argv
from tests.support.faultdns import FaultDNS

pytestmark = pytest.mark.timeout(60)


def test_a_pod_speaking_from_an_unlisted_address_is_named_at_the_timeout_with_the_default_probe(
    fault_dns: FaultDNS, processes: list[AgentProcess]
) -> None:
    """Pod 1's name lists one address, where nobody listens, but its agent speaks from another
    (a second interface). The coordinator warns at once that contacts come from there, and at
    its timeout names that address for pod 1 ("connected from A, which DNS does not list"), as
    it does with ``--probe dns``. (It said only "at B (the one address of the Service not
    answering as a peer): connect to port P: refused", with the hint that pod 1's agent had not
    started yet.)"""
    job = Job(fault_dns, 2, timeout="8s")
    job.publish()
    elsewhere = job.address(6)
    coordinator = AgentProcess(agent_argv(job, "wait", 0, "--timeout", job.timeout))
    processes.append(coordinator)
    argv = agent_argv(job, "wait", 1, "--timeout", "60s")
    argv[argv.index("--listen") + 1] = elsewhere
    member = AgentProcess(argv)
    processes.append(member)
    coordinator.wait_line(f"contacts come from {elsewhere}, which DNS does not list")
    assert coordinator.finish() == 3
    member.stop()
    [line] = [line for line in coordinator.stderr.splitlines() if f"{job.fqdn(1)}:" in line]
    assert f"connected from {elsewhere}, which DNS does not list" in line, coordinator.stderr
