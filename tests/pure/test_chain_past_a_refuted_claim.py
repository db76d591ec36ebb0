"""Past a cut Service answer the coordinator checks by name only where the chain of ring reports
stopped (``agent.core.recheck``). A claim its name's answer does not vouch for (an outsider's
claim of a pod that never started, or a pod talking from another address than its name gives)
is no break that checking mends: before, the coordinator asked that one name again and again,
every member above it waited held, and its timeout named them all missing "connected from an
address DNS does not list" though DNS gives their names right (an outside review; the
real-process versions are in tests/faults/test_silent_claims.py). Events in, effects out, on a
hand-held clock."""

from __future__ import annotations

import pytest

from agent.core.agent import Agent
from agent.core.causes import Cause, Failure
from agent.core.effects import Lookup
from agent.core.inputs import LookedUp, Received, Resolution, Swept
from agent.protocol.wire import Vouch
from tests.pure.test_admission import OUTSIDER, _address, _agent, _hello, _open

pytestmark = pytest.mark.timeout(20)

PEERS = 8


def _next_lookup(agent: Agent, until: float = 120.0) -> tuple[int, float]:
    """The next check the coordinator asks (its index), and when."""
    while (now := agent.next_wakeup()) <= until:
        asked = [e.index for e in agent.poll(now) if isinstance(e, Lookup)]
        if asked:
            return asked[0], now
    raise AssertionError(f"no check asked by {until}s")


def _held_past_a_cut(claim_3_from: str) -> Agent:
    """Pod 0 past a cut answer (the Service lists only itself): index 3's claim from
    ``claim_3_from``, where its name does not lead, and pods 4 to 7 from their own addresses,
    each session held with its report of its ring neighbour (pod 2 never reached 3: the chain
    of reports stops there)."""
    agent = _agent(PEERS, 0)
    agent.begin(0.0)
    agent.handle(Swept(Resolution((_address(0),), truncated=True)), 0.1)
    for i in range(3, PEERS):
        at = claim_3_from if i == 3 else _address(i)
        _open(agent, 10 + i, _hello(i, PEERS), at, 0.2)
        nxt = (i + 1) % PEERS
        if nxt:
            agent.handle(Received(10 + i, Vouch(nxt, _address(nxt))), 0.2)
        assert agent.is_holding(10 + i)
    return agent


@pytest.mark.parametrize("claim_3_from", [OUTSIDER, "10.0.0.51"], ids=["outsider", "elsewhere"])
def test_a_claim_its_names_answer_refutes_moves_the_check_to_the_next_index(
    claim_3_from: str,
) -> None:
    """Index 3's name gives 10.0.0.4, not where its claim comes from: the next check asks 4's
    name (it asked 3's again, for ever), which vouches for pod 4's session; its report vouches
    for 5, and so on round the ring. The claim of 3 is still held, never counted."""
    agent = _held_past_a_cut(claim_3_from)
    index, now = _next_lookup(agent)
    assert index == 3
    agent.handle(LookedUp(3, Resolution((_address(3),))), now + 0.01)
    assert agent.is_holding(13)
    index, now = _next_lookup(agent)
    assert index == 4, "the check stayed on the refuted claim of 3"
    agent.handle(LookedUp(4, Resolution((_address(4),))), now + 0.01)
    assert [agent.is_holding(10 + i) for i in range(3, PEERS)] == [True] + [False] * 4
    # named for where its claim comes from and where its name leads (not "not in DNS")
    why = agent.status.reason(3)
    assert why.startswith(f"connected from {claim_3_from}, which DNS does not list"), why
    assert why.endswith(f"its name gives {_address(3)}"), why
    assert agent.status.cause(3) is Cause.UNLISTED_SOURCE
    # with nothing else waiting, the refuted claim is the one checked again (DNS may change)
    assert _next_lookup(agent)[0] == 3


def test_a_check_that_dns_failed_to_answer_is_asked_again_first() -> None:
    """A lookup that DNS failed (no answer at all) refutes nothing: the same name is asked
    again, the chain's break still there."""
    agent = _held_past_a_cut(OUTSIDER)
    index, now = _next_lookup(agent)
    failed = Failure("SERVFAIL", Cause.DNS_FAILED)
    agent.handle(LookedUp(index, Resolution(failure=failed)), now + 0.01)
    assert _next_lookup(agent)[0] == 3
