"""A pod heard from an address DNS does not list is named at the timeout with the default
probe (an outside review), over the pure core; the real-process version is
tests/faults/test_unlisted_named.py.

With the tcp probe and bulk discovery the coordinator never reaches the pod at the address DNS
lists (nothing answers there), so its timeout line is a missing peer's, not the barrier's:
it spoke only of the listed address's refusal, and the hint said the pod's agent had not
started, though that agent was talking from elsewhere.
"""

from __future__ import annotations

import pytest

from agent.config.parse import build_config
from agent.core.agent import Agent
from agent.core.causes import Cause, Failure
from agent.core.inputs import (
    AddressProbed,
    Contacted,
    Opened,
    Reached,
    Resolution,
    Swept,
    Unreached,
)
from agent.protocol.instance import instance_id
from agent.protocol.wire import Hello, Identity, Role
from agent.topology.podfiles import PodFacts

pytestmark = pytest.mark.timeout(20)

ELSEWHERE = "10.0.0.9"  # pod 1's agent talks from here; DNS lists 10.0.0.2 for it
REFUSED = Unreached(Failure("connect to port 29300: refused", Cause.CONNECT_REFUSED))


def _me(index: int) -> Identity:
    return Identity("job", "", index, 2, 29300, instance_id(1, index))


def _coordinator() -> Agent:
    """Pod 0 of 2, default probe: the Service lists both pods; 0 answers, 1's address refuses."""
    values = {"peers": "2", "index": "0", "service": "svc", "namespace": "ns", "timeout": "5s"}
    config = build_config("wait", values, PodFacts(hostname="job-0"))
    agent = Agent(config, me=_me(0), now=0.0, rand=lambda: 0.5)
    agent.begin(0.0)
    agent.handle(Swept(Resolution(("10.0.0.1", "10.0.0.2"))), 0.1)
    agent.handle(AddressProbed("10.0.0.1", Reached(0, _me(0).instance)), 0.1)
    agent.handle(AddressProbed("10.0.0.2", REFUSED), 0.1)
    return agent


@pytest.mark.parametrize("session", [True, False], ids=["held-session", "hello-only"])
def test_a_pod_talking_from_an_unlisted_address_is_named_and_not_said_to_have_not_started(
    session: bool,
) -> None:
    """Its hello (and, if it opened one, its held session) names the address in its missing
    line, and the hints say where it talks from, never that its agent has not started."""
    agent = _coordinator()
    hello = Hello(_me(1), Role.MEMBER, "n")
    agent.handle(Contacted(hello, ELSEWHERE), 1.0)
    if session:
        agent.handle(Opened(8, hello, False, ELSEWHERE), 1.0)
    timeout = agent.status.timeout()
    [line] = timeout.missing
    assert f"connected from {ELSEWHERE}, which DNS does not list" in line
    assert "10.0.0.2" in line  # and where DNS says it is, and what happened there
    assert not any("have not started" in hint for hint in timeout.hints), timeout.hints
    assert any("is claimed from an address DNS does not list" in hint for hint in timeout.hints)


def test_without_a_contact_the_listed_address_refusing_still_says_the_agent_has_not_started() -> (
    None
):
    """Nothing heard from pod 1: the line and hint are as before."""
    timeout = _coordinator().status.timeout()
    [line] = timeout.missing
    assert "connected from" not in line
    assert any("have not started" in hint for hint in timeout.hints)
