"""Two live instances of index 0 while DNS moves to the new one: the pure core, event by event.

An old pod of index 0 runs on (terminating, or on a node cut off from the API server) after
Kubernetes replaced it: the new instance starts at another address and DNS moves the pod's name
and the Service's entry there. A member whose session is with the old instance must leave it
and dial the coordinator DNS gives; the old instance must find out, from its own name, that it
was replaced, say so, release nobody and let its members go. (The in-memory cluster runs the
same story in tests/sim/test_stale_coordinator.py, real processes in
tests/faults/test_stale_coordinator.py.)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pytest

from agent.config.parse import build_config
from agent.core.agent import Agent
from agent.core.answers import NameAttempt
from agent.core.causes import Cause
from agent.core.effects import Attempt, Close, Dial, Effect, Fail, Released, Report, Send, Sweep
from agent.core.inputs import (
    AddressProbed,
    Contacted,
    Input,
    Opened,
    Reached,
    Received,
    Resolution,
    Swept,
)
from agent.core.log import LogKind
from agent.core.outcome import ReleaseKind
from agent.core.roles import Member
from agent.core.timing import DEFAULT_TIMING
from agent.errors import BarrierTimeout
from agent.protocol.instance import instance_id
from agent.protocol.wire import Arrive, Hello, Identity, Refuse, Role
from agent.topology.podfiles import PodFacts

pytestmark = pytest.mark.timeout(10)

A, B, C = "10.0.0.1", "10.0.0.9", "10.0.0.7"  # the old pod of index 0, the new one, an older one
M1, M2 = "10.0.1.1", "10.0.2.1"  # pods 1 and 2
OLDER0, OLD0, NEW0 = instance_id(1, 0), instance_id(3, 0), instance_id(5, 0)
I1, I2 = instance_id(2, 1), instance_id(4, 2)


def _agent(index: int, instance: str) -> Agent:
    config = build_config(
        "wait",
        {"peers": "3", "index": str(index), "service": "svc", "namespace": "ns", "timeout": "30s"},
        PodFacts(hostname=f"job-{index}"),
    )
    return Agent(config, me=_identity(index, instance), now=0.0, rand=lambda: 0.5)


def _identity(index: int, instance: str) -> Identity:
    return Identity("job", "", index, 3, 29300, instance)


def _hello(index: int, instance: str, role: Role = Role.PROBE) -> Hello:
    return Hello(_identity(index, instance), role, "n")


def _feed(agent: Agent, now: float, *events: Input) -> list[Effect]:
    return [effect for event in events for effect in agent.handle(event, now)]


def _round(agent: Agent, after: float, listed: tuple[str, ...]) -> tuple[float, list[Effect]]:
    """The next DNS round that falls due after ``after``, answered with ``listed``."""
    now = after
    while Sweep() not in agent.poll(now):
        now = agent.next_wakeup()
    return now, agent.handle(Swept(Resolution(listed)), now)


def _kinds(effects: list[Effect]) -> list[LogKind]:
    return [e.line.kind for e in effects if isinstance(e, Report)]


# --- the member ---------------------------------------------------------------------------------
def _member_with_the_old_coordinator() -> Agent:
    """Pod 1 has reached the old instance of index 0 at A (and itself) and holds its session
    (conn 7); pod 2 is not published yet, so its DNS rounds go on."""
    member = _agent(1, I1)
    assert Dial() in member.begin(0.0)
    _feed(member, 0.1, Swept(Resolution((A, M1))))
    _feed(member, 0.2, AddressProbed(A, Reached(0, OLD0)), AddressProbed(M1, Reached(1, I1)))
    reply = _hello(0, OLD0, Role.REPLY)
    assert _feed(member, 0.3, Contacted(reply, A, listed=True), Opened(7, reply, True, A)) == []
    assert isinstance(member.side, Member) and member.side.conn == 7
    return member


def _probe_reply_from_b(member: Agent, now: float) -> list[Effect]:
    """The round lists B (the new instance) instead of A; B's reply says who answers."""
    now, _ = _round(member, now, (B, M1))
    return _feed(member, now, AddressProbed(B, Reached(0, NEW0)))


def _hello_from_b(member: Agent, now: float) -> list[Effect]:
    """The new instance probes pod 1 from B, which the last answer listed."""
    now, _ = _round(member, now, (B, M1))
    return _feed(member, now, Contacted(_hello(0, NEW0), B))


def _hello_from_the_old_one(member: Agent, now: float) -> list[Effect]:
    """The old instance probes pod 1 again from A (still listed): nothing new."""
    now, _ = _round(member, now, (A, M1))
    return _feed(member, now, Contacted(_hello(0, OLD0), A))


#: (how pod 1 hears of index 0, does it leave its session, where it dials next)
MEMBER_NEWS = [
    pytest.param(_probe_reply_from_b, True, (B,), id="probe-reply-from-the-new-instance"),
    pytest.param(_hello_from_b, True, (), id="hello-from-the-new-instance"),
    pytest.param(_hello_from_the_old_one, False, None, id="hello-from-the-old-instance"),
]


@pytest.mark.parametrize("news, leaves, dial", MEMBER_NEWS)
def test_a_member_leaves_a_session_with_a_replaced_coordinator(
    news: Callable[[Agent, float], list[Effect]], leaves: bool, dial: tuple[str, ...] | None
) -> None:
    """Hearing of a newer instance of index 0 (from an address DNS lists) closes the session
    with the old one and dials again at once: where it reached the new instance if it has
    (an address the Service lists), else by name (DNS gives the new one). Before the fix the
    session stayed, and pod 1 arrived again on it: the old instance never released it, the
    new one waited for it ("not connected") until everyone's timeout."""
    member = _member_with_the_old_coordinator()
    effects = news(member, 0.4)
    side = member.side
    assert isinstance(side, Member)
    assert (Close(7) in effects) is leaves
    if not leaves:
        assert side.conn == 7
        return
    assert side.conn is None and "replaced" in side.last_problem
    now = member.next_wakeup()
    assert Dial(dial or ()) in member.poll(now)


def test_a_dial_that_lands_on_the_replaced_coordinator_is_closed_and_tried_elsewhere() -> None:
    """Pod 1 has reached the new instance at B when its dial by name still lands on the old
    one at A (DNS gives both for a while): that session is closed before anything is said on
    it, and the next dial goes to B."""
    member = _agent(1, I1)
    assert Dial() in member.begin(0.0)  # the dial is out; the rounds go on meanwhile
    _feed(member, 0.1, Swept(Resolution((A, B, M1))))
    _feed(member, 0.2, AddressProbed(B, Reached(0, NEW0)), AddressProbed(M1, Reached(1, I1)))
    _feed(member, 0.2, AddressProbed(M2, Reached(2, I2)))  # a push: pod 2 said hello
    reply = _hello(0, OLD0, Role.REPLY)
    effects = _feed(member, 0.3, Contacted(reply, A, listed=True), Opened(7, reply, True, A))
    assert effects == [Close(7)]  # no Arrive on it
    side = member.side
    assert isinstance(side, Member) and side.conn is None
    assert Dial((B,)) in member.poll(member.next_wakeup())
    new = _hello(0, NEW0, Role.REPLY)
    effects = _feed(member, 0.5, Contacted(new, B, listed=True), Opened(8, new, True, B))
    assert any(isinstance(e, Send) and isinstance(e.message, Arrive) for e in effects)


# --- the old coordinator -------------------------------------------------------------------------
def _coordinator_waiting() -> Agent:
    """The old instance of index 0 at A has reached everyone; member 1 holds a session (conn
    11) and has arrived, member 2 has not connected: the coordinator waits."""
    old = _agent(0, OLD0)
    effects = old.begin(0.0)
    assert Attempt(0, OLD0) in effects and Sweep() in effects
    _feed(old, 0.1, NameAttemptAt({A: OLD0}).outcome_for(0, OLD0, (A,)))
    _feed(old, 0.1, Swept(Resolution((A, M1, M2))))
    _feed(old, 0.2, AddressProbed(M1, Reached(1, I1)), AddressProbed(M2, Reached(2, I2)))
    assert old.reach.done
    member = _hello(1, I1, Role.MEMBER)
    view = old.reach.view()
    assert _feed(old, 0.3, Opened(11, member, False, M1), Received(11, Arrive(view))) == []
    return old


class NameAttemptAt:
    """Who answers at each address: an attempt by name judged by the shipped NameAttempt."""

    def __init__(self, answers: Mapping[str, str]) -> None:
        self.answers = answers

    def outcome_for(self, index: int, instance: str, addresses: tuple[str, ...]) -> Input:
        attempt = NameAttempt(index, instance, Resolution(addresses))
        for address in addresses:
            if attempt.probed(address, Reached(0, self.answers[address])):
                break
        return attempt.outcome()


#: (what the old instance's own name resolves to, who answers there, was it replaced)
OWN_NAME = [
    pytest.param((B,), {B: NEW0}, True, id="moved-to-the-new-instance"),
    pytest.param((A, B), {A: OLD0, B: NEW0}, True, id="both-listed-its-own-first"),
    pytest.param((B, A), {A: OLD0, B: NEW0}, True, id="both-listed-the-new-first"),
    pytest.param((A,), {A: OLD0}, False, id="still-its-own"),
    pytest.param((C,), {C: OLDER0}, False, id="an-older-instance-there-it-is-the-new-one"),
]


@pytest.mark.parametrize("addresses, answers, replaced", OWN_NAME)
def test_a_coordinator_waiting_asks_its_own_name_and_learns_it_was_replaced(
    addresses: tuple[str, ...], answers: dict[str, str], replaced: bool
) -> None:
    """Nobody tells a replaced coordinator (the new instance never probes an address DNS no
    longer lists), so while it waits it asks its own name again. Replaced, it says so, never
    counts itself again and releases nobody, even once every member has arrived with the view
    it had (its members leave it on their own, for the new one); not replaced, it releases."""
    old = _coordinator_waiting()
    view = old.reach.view()  # what member 1 arrived with
    now = old.next_wakeup()
    while Attempt(0, OLD0) not in (effects := old.poll(now)):
        now = old.next_wakeup()
    # the first check comes a look-around after everyone is reached, once the name's answer
    # is older than DNS's TTL (asked sooner, cluster DNS gives it again from its cache)
    assert now <= 0.2 + max(1.0, DEFAULT_TIMING.refused_reuse)
    effects = _feed(old, now, NameAttemptAt(answers).outcome_for(0, OLD0, addresses))
    assert (LogKind.REPLACED in _kinds(effects)) is replaced
    assert old.reach.peers[0].reached is not replaced
    member2 = _hello(2, I2, Role.MEMBER)
    joined = _feed(old, now + 0.1, Opened(12, member2, False, M2))
    assert not any(isinstance(e, Send) and isinstance(e.message, Refuse) for e in joined)
    arrived = _feed(old, now + 0.1, Received(12, Arrive(view)))
    assert (Released(ReleaseKind.DECIDED) in arrived) is not replaced
    if not replaced:
        return
    assert old.verdict is None
    # Its own name, or its own address in a DNS round, never counts for it again.
    _feed(old, now + 0.2, AddressProbed(A, Reached(0, OLD0)))
    assert not old.reach.peers[0].reached
    [fail] = [e for e in old.poll(30.0) if isinstance(e, Fail)]
    assert isinstance(fail.error, BarrierTimeout)
    assert any("replaced: a newer instance of pod 0 answers at" in m for m in fail.error.missing)
    assert any("this pod was replaced" in h for h in fail.error.hints)


@pytest.mark.parametrize(
    "sighting",
    [
        pytest.param(lambda: Contacted(_hello(0, NEW0), B), id="its-hello"),
        pytest.param(lambda: AddressProbed(B, Reached(0, NEW0)), id="a-probe-reply"),
    ],
)
def test_a_newer_instance_of_its_own_index_makes_a_pod_ask_its_own_name_at_once(
    sighting: Callable[[], Input],
) -> None:
    """A newer instance of index 0 heard of from an address DNS lists for the Service: the
    old instance asks its own name at once rather than at its next look."""
    old = _coordinator_waiting()
    old.handle(Swept(Resolution((B, M1, M2))), 0.4)  # an answer: B is listed now
    effects = _feed(old, 0.5, sighting())
    assert Attempt(0, OLD0) in effects
    outcome = NameAttemptAt({B: NEW0}).outcome_for(0, OLD0, (B,))
    effects = _feed(old, 0.6, outcome)
    assert LogKind.REPLACED in _kinds(effects)
    [line] = [e.line for e in effects if isinstance(e, Report)]
    assert "job-0" in line.message and f"answers at {B}" in line.message
    assert old.reach.peers[0].failure.cause is Cause.REPLACED


#: (what its own name answers once a member's reply says the barrier passed, does it join)
TOLD = [
    pytest.param((A,), {A: OLD0}, True, id="still-its-own-it-joins-late"),
    pytest.param((B,), {B: NEW0}, False, id="replaced-it-never-joins"),
]


@pytest.mark.parametrize("addresses, answers, joins", TOLD)
def test_a_coordinator_told_of_a_release_asks_its_own_name_before_it_joins(
    addresses: tuple[str, ...], answers: dict[str, str], joins: bool
) -> None:
    """A late joiner returns only once it has itself reached every index, its own name
    included, now: the old instance of a replaced pod, told by a member that the new one
    released everyone, must not pass (its workload would run as a second pod 0)."""
    old = _coordinator_waiting()
    effects = _feed(old, 0.4, AddressProbed(M2, Reached(2, I2, released=True)))
    assert Attempt(0, OLD0) in effects and old.verdict is None
    effects = _feed(old, 0.5, NameAttemptAt(answers).outcome_for(0, OLD0, addresses))
    assert (Released(ReleaseKind.ALREADY) in effects) is joins
    assert (LogKind.REPLACED in _kinds(effects)) is not joins
