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
from agent.core.timing import DEFAULT_TIMING
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
    index, asked_4 = _next_lookup(agent)
    assert index == 4, "the check stayed on the refuted claim of 3"
    # at once, as 4 would have been asked with no claim of 3 (it waited a doubled gap, 2 s)
    assert asked_4 == now + 0.01
    agent.handle(LookedUp(4, Resolution((_address(4),))), asked_4 + 0.01)
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


def _members_first(claim_3_from: str | None) -> Agent:
    """Pod 0 with the sessions of pods 4 to 7 held before its first Service answer came back
    (cut: the checks that began before wait ``recheck_first``, not ``vouch_wait``), each with
    its report of its ring neighbour; then, past the cut, index 3's claim from
    ``claim_3_from`` (None: no claim, pod 3 simply missing)."""
    agent = _agent(PEERS, 0)
    agent.begin(0.0)
    for i in range(4, PEERS):
        _open(agent, 10 + i, _hello(i, PEERS), _address(i), 0.05)
        if (nxt := (i + 1) % PEERS) != 0:
            agent.handle(Received(10 + i, Vouch(nxt, _address(nxt))), 0.05)
    agent.handle(Swept(Resolution((_address(0),), truncated=True)), 0.1)
    if claim_3_from is not None:
        _open(agent, 13, _hello(3, PEERS), claim_3_from, 0.5)
        assert agent.is_holding(13)
    return agent


@pytest.mark.parametrize("claim_3_from", [OUTSIDER, "10.0.0.51"], ids=["outsider", "elsewhere"])
def test_a_claim_that_comes_after_the_members_above_it_does_not_delay_their_check(
    claim_3_from: str,
) -> None:
    """Index 3 claimed (by an outsider, or by pod 3 from an address its name does not give)
    once the checks of pods 4 to 7 have begun. When 4's check comes due, the chain's break,
    3, is asked in its place (one name a check, as before), its answer refutes the claim, and
    4's name is asked at once: 4 to 7 are vouched along the chain a lookup later than with no
    claim of 3. Before, the claim of 3 was the break from the moment it came, and 4's due
    checks went unasked until 3's own wait ended (``vouch_wait``, 10 s): a 10 s timeout named
    pods 3 to 7 missing (outside review 7; tests/faults/test_review7_outsider_chain.py). The
    claim of 3 stays held, never counted, and named with what its name gives."""
    _, without_claim = _next_lookup(_members_first(None))
    agent = _members_first(claim_3_from)
    index, now = _next_lookup(agent)
    assert (index, now) == (3, without_claim), "the unchecked claim of 3 held up 4's check"
    agent.handle(LookedUp(3, Resolution((_address(3),))), now + 0.01)
    index, now = _next_lookup(agent)
    assert (index, now) == (4, without_claim + 0.01), "4 was not asked once 3 was refuted"
    agent.handle(LookedUp(4, Resolution((_address(4),))), now + 0.01)
    assert [agent.is_holding(10 + i) for i in range(3, PEERS)] == [True] + [False] * 4
    assert without_claim < DEFAULT_TIMING.vouch_wait
    why = dict(agent.status.missing())[3]
    assert f"connected from {claim_3_from}" in why and f"its name gives {_address(3)}" in why, why


def test_claims_of_two_indices_below_the_members_are_refuted_one_after_the_other() -> None:
    """An outsider claims indices 2 and 3 once the checks of pods 4 to 7 have begun: when 4's
    check comes due, 2's name is asked, then 3's the moment 2's answer refutes its claim (3
    was never checked: its first check in 4's place), then 4's: one name at a time, each
    right after the last, not at the next check due above them (a doubled gap each)."""
    _, without_claim = _next_lookup(_members_first(None))
    agent = _members_first(OUTSIDER)
    _open(agent, 12, _hello(2, PEERS), OUTSIDER, 0.5)
    asked = []
    for _ in range(3):
        index, now = _next_lookup(agent)
        asked.append((index, round(now - without_claim, 6)))
        agent.handle(LookedUp(index, Resolution((_address(index),))), now + 0.01)
    assert asked == [(2, 0.0), (3, 0.01), (4, 0.02)]
    assert [agent.is_holding(10 + i) for i in range(2, PEERS)] == [True] * 2 + [False] * 4
