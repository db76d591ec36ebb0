"""Secure by default, without a token: a pod outside the Job's Service (DNS does not list its
address) can neither be counted, nor release the barrier, nor abort it. Real agents on
loopback with a real DNS server; the outsider is a real peer-agent claiming to be pod 2."""

from __future__ import annotations

import subprocess

import pytest

from tests.integration.conftest import DRIVERS, Agents, finish, wait_for_line

# The start barrier over both drivers (agent.commands.drivers)
pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.parametrize("driver", DRIVERS, indirect=True),
]

#: an address of the loopback net that DNS never lists (on loopback, so also "mesh-like")
OUTSIDER = 9


def _outsider(agents: Agents, peers: int) -> subprocess.Popen[str]:
    return agents.start("wait", 2, peers, "--timeout", "30s", address=agents.address(OUTSIDER))


@pytest.mark.parametrize("peers", [4, 3], ids=["disagrees-on-the-peer-count", "agrees-and-arrives"])
def test_an_outsider_claiming_a_missing_pod_neither_aborts_nor_releases(
    agents: Agents, peers: int
) -> None:
    """Pods 0 and 1 wait for pod 2; the outsider says it is pod 2 (with 4 peers, which would
    abort a real pod's barrier with exit 4; or with 3, arriving at the coordinator). Both pods
    see its contacts and ignore them; once the real pod 2 comes, everyone passes, exit 0."""
    agents.publish(0)
    agents.publish(1)
    pods = [agents.start("wait", i, 3) for i in range(2)]
    for pod in pods:
        wait_for_line(pod, "pod ")
    outsider = _outsider(agents, peers)
    for pod in pods:  # the contact came, from an address the Service does not list
        wait_for_line(
            pod, f"contacts come from {agents.address(OUTSIDER)}, which DNS does not list"
        )
    assert all(pod.poll() is None for pod in pods)  # neither released nor aborted
    agents.publish(2)
    real = agents.start("wait", 2, 3)
    for proc in (*pods, real):
        code, _, err = finish(proc)
        assert code == 0, err
        assert "barrier aborted" not in err
    outsider.kill()
    outsider.communicate()


def test_a_late_pod_seen_before_it_is_published_is_accepted_once_it_is(agents: Agents) -> None:
    """The real pod 2 starts (and says hello to everyone) before DNS lists it: its contacts are
    held, not refused, and count as soon as a fresh answer lists its address."""
    agents.publish(0)
    agents.publish(1)
    pods = [agents.start("wait", i, 3) for i in range(2)]
    for pod in pods:
        wait_for_line(pod, "pod ")
    agents.dns.set_a(  # its own name resolves (its owner check), the Service lacks it
        "example-job-2.headless-svc.default.svc.cluster.local", [agents.address(2)]
    )
    late = agents.start("wait", 2, 3)
    wait_for_line(pods[0], f"contacts come from {agents.address(2)}, which DNS does not list")
    assert pods[0].poll() is None
    agents.publish(2)
    for proc in (*pods, late):
        code, _, err = finish(proc)
        assert code == 0, err


def test_with_trust_source_any_an_outsider_is_counted_as_before(agents: Agents) -> None:
    """The escape hatch (a mesh that rewrites source addresses): every contact counts, so an
    outsider disagreeing on the peer count aborts the Job's pods, exit 4, as without the check."""
    agents.publish(0)
    agents.publish(1)
    pods = [agents.start("wait", i, 3, "--trust-source", "any") for i in range(2)]
    for pod in pods:
        wait_for_line(pod, "pod ")
    outsider = _outsider(agents, 4)
    codes = [finish(pod)[0] for pod in pods]
    assert 4 in codes, codes
    outsider.kill()
    outsider.communicate()
