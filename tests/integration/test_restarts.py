"""Restarts before the release, on loopback with real agents and a real DNS server: a pod that
had arrived sees index 0 replaced at the same address, and is released only once it has
reached the new instance (the view it arrived with no longer counts)."""

from __future__ import annotations

import signal

import pytest

from tests.integration.conftest import DRIVERS, SERVICE, Agents, finish, fqdn, wait_for_line

# The start barrier over both drivers (agent.commands.drivers)
pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.parametrize("driver", DRIVERS, indirect=True),
]


@pytest.mark.parametrize("mode", ["wait", "sidecar"])
def test_coordinator_replaced_at_the_same_address_after_a_member_arrived(
    agents: Agents, mode: str
) -> None:
    """Pod 1 reaches pod 0 and itself and arrives; pod 0 cannot reach pod 1 yet (the Service
    does not list it). Pod 0 is killed and started again at the same address (a container
    restart keeps the pod's IP). Once the Service lists pod 1, both pass — and pod 1 only after
    it has reached pod 0's new instance: its old arrival named the old one."""
    agents.dns.set_a(fqdn(0), [agents.address(0)])
    agents.dns.set_a(fqdn(1), [agents.address(1)])
    service = f"{SERVICE}.default.svc.cluster.local"
    agents.dns.set_a(service, [agents.address(0)])
    old = agents.start(mode, 0, 2)
    member = agents.start(mode, 1, 2)
    wait_for_line(member, "reached all 2 peers")
    old.send_signal(signal.SIGKILL)
    old.communicate()
    new = agents.start(mode, 0, 2)
    after_restart = wait_for_line(member, "restarted: reaching its new instance")
    assert not any("barrier released" in line for line in after_restart)
    agents.dns.set_a(service, [agents.address(0), agents.address(1)])
    lines = wait_for_line(member, "barrier released")
    reached_again = [i for i, line in enumerate(lines) if f"reached {fqdn(0)}" in line]
    assert reached_again, "".join(lines)  # the new instance, before the release
    if mode == "wait":
        for proc in (member, new):
            assert finish(proc)[0] == 0
    else:
        wait_for_line(new, "serving /readyz")
