"""Admission over the pure core: what is held, kept or named for a party DNS has not vouched
for, its bounds, what drops it, and the timer that re-checks it (issue 21 holes 1, 3, 5, 7, 9,
14). Events in, effects out, on a hand-held clock; the real-process versions are in
tests/faults/test_admission.py.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.config.parse import build_config
from agent.core.admission import HELD
from agent.core.agent import Agent
from agent.core.bounded import Bounded, Bounds
from agent.core.effects import Attempt, Close, Effect, Lookup, ProbeAddress, Released, Report
from agent.core.inputs import (
    AddressProbed,
    Attempted,
    Contacted,
    LookedUp,
    Lost,
    Opened,
    Reached,
    Received,
    Resolution,
    Swept,
)
from agent.core.phase import Phase
from agent.core.roles import Member
from agent.core.timing import DEFAULT_TIMING
from agent.protocol.instance import instance_id
from agent.protocol.wire import Ack, Arrive, Hello, Identity, Release, Role
from agent.topology.podfiles import PodFacts
from tests.support.budget import budget

pytestmark = pytest.mark.timeout(20)

FIRST, CAP = DEFAULT_TIMING.recheck_first, DEFAULT_TIMING.recheck_cap
WARN_AFTER = DEFAULT_TIMING.unlisted_warn_after
OUTSIDER = "10.9.9.9"


def _agent(peers: int, index: int, mode: str = "wait", **values: str) -> Agent:
    config = build_config(
        mode,
        {"peers": str(peers), "index": str(index), "service": "svc", "namespace": "ns", **values},
        PodFacts(hostname=f"job-{index}"),
    )
    return Agent(config, me=_me(index, peers), now=0.0, rand=lambda: 0.5)


def _me(index: int, peers: int, serial: int = 1) -> Identity:
    return Identity("job", "", index, peers, 29300, instance_id(serial, index))


def _address(index: int) -> str:
    return f"10.0.0.{index + 1}"


def _hello(index: int, peers: int, serial: int = 1, job: str = "job") -> Hello:
    who = _me(index, peers, serial)
    return Hello(Identity(job, who.uid, index, peers, who.port, who.instance), Role.MEMBER, "n")


def _reached_by_service(agent: Agent, peers: int, listed: range) -> None:
    """A bulk round lists ``listed``; each answers as itself."""
    agent.begin(0.0)
    agent.handle(Swept(Resolution(tuple(_address(i) for i in listed))), 0.1)
    for i in listed:
        agent.handle(AddressProbed(_address(i), Reached(i, _me(i, peers).instance)), 0.1)


def _reached_by_name(agent: Agent, peers: int) -> None:
    agent.begin(0.0)
    for i in range(peers):
        agent.handle(Attempted(i, Reached(), _address(i), (_address(i),)), 0.1)


def _next_lookup(agent: Agent, index: int) -> float:
    """Polls at each wake-up until one asks for ``index``'s name: when. An attempt polled on
    the way (a coordinator's look around) lands at once, as the peer's same address: while it
    is out, its name is in flight and no check of the name is asked (``agent.core.asking``)."""
    while True:
        now = agent.next_wakeup()
        effects = agent.poll(now)
        for e in effects:
            if isinstance(e, Attempt):
                agent.handle(Attempted(e.index, Reached(), _address(e.index)), now)
        if Lookup(index) in effects:
            return now


def _released_sidecar(peers: int, index: int) -> Agent:
    """A member sidecar that has passed and serves on."""
    agent = _agent(peers, index, mode="sidecar")
    _reached_by_service(agent, peers, range(peers))
    agent.handle(Opened(3, Hello(_me(0, peers), Role.REPLY, "n"), True, _address(0)), 0.2)
    agent.handle(Received(3, Release(agent.reach.view())), 0.2)
    agent.poll(0.3)
    assert agent.phase is Phase.FINISHED
    return agent


def _closed(effects: list[Effect]) -> list[int]:
    return [e.conn for e in effects if isinstance(e, Close)]


def _lines(effects: list[Effect]) -> list[str]:
    return [e.line.message for e in effects if isinstance(e, Report)]


def _open(agent: Agent, conn: int, hello: Hello, address: str, now: float) -> list[Effect]:
    """A member's connection as ``Contacts.serve`` posts it: its hello, then its session."""
    out = agent.handle(Contacted(hello, address), now)
    return out + agent.handle(Opened(conn, hello, False, address), now)


# --- the bounds (hole 1) --------------------------------------------------------------------------
@settings(max_examples=budget(2), deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5)), max_size=60))
def test_no_bound_is_ever_passed_and_the_newest_item_always_stays(
    adds: list[tuple[int, int]],
) -> None:
    """Whatever is added, claiming whichever index from whichever address: no address, no
    index and not the whole store ever holds more than its bound, and what was added last is
    kept (the oldest go first)."""
    store: Bounded[int, None] = Bounded(Bounds(per_address=2, per_index=3, total=5))
    for key, (index, address) in enumerate(adds):
        store.add(key, index, str(address), None)
        assert key in store
        assert len(store) <= 5
        assert all(len(store.at(str(a))) <= 2 for a in range(6))
        assert all(len(store.claiming(i)) <= 3 for i in range(6))


def test_sessions_from_unlisted_addresses_are_held_a_few_each_and_said_once() -> None:
    """A coordinator of 12 pods has reached them all; sessions claiming to be members come from
    an address DNS does not list, one per claimed index, then from many addresses claiming
    index 5. It holds at most HELD.per_address from that address and HELD.per_index claiming
    index 5, closing the oldest, says so once, and never touches an admitted session."""
    peers = 12
    agent = _agent(peers, 0)
    _reached_by_service(agent, peers, range(peers))
    admitted = _open(agent, 1, _hello(1, peers, serial=2), _address(1), 0.2)
    assert _closed(admitted) == []
    effects: list[Effect] = []
    for conn, index in enumerate(range(2, 12), start=100):
        effects += _open(agent, conn, _hello(index, peers, serial=2), OUTSIDER, 0.3)
    assert _closed(effects) == list(range(100, 106))  # the oldest 6 of 10 from one address
    for conn in range(200, 210):
        effects += _open(agent, conn, _hello(5, peers, serial=2), f"10.8.0.{conn}", 0.4)
    assert sum(agent.is_holding(c) for c in range(200, 210)) == HELD.per_index
    assert [line for line in _lines(effects) if "closing the oldest" in line] != []
    assert len([line for line in _lines(effects) if "closing the oldest" in line]) == 1
    assert 1 not in _closed(effects) and not agent.is_holding(1)


def test_every_member_of_a_large_job_may_be_held_and_only_256_more() -> None:
    """A Job of 600 pods: every member dials the coordinator before it has found any (their
    addresses not listed yet): all are held, none closed. Sessions beyond that, from 150
    addresses claiming members 4 a piece, are held up to HELD.total more than the members
    without a session, the oldest closed first. (All-to-all: with the tree of coordinators
    a 600-pod Job's root holds only its 47 children's sessions.)"""
    peers = 600
    agent = _agent(peers, 0, reach="all")
    agent.begin(0.0)
    members = [
        _open(agent, i, _hello(i, peers), f"10.1.{i // 250}.{i % 250}", 0.1)
        for i in range(1, peers)
    ]
    assert [_closed(e) for e in members if _closed(e)] == []
    assert all(agent.is_holding(i) for i in range(1, peers))
    effects: list[Effect] = []
    for k in range(600):
        hello = _hello(1 + k % (peers - 1), peers, serial=2)
        effects += _open(agent, 1000 + k, hello, f"10.2.{k // 4 // 250}.{k // 4 % 250}", 0.2)
    held = sum(agent.is_holding(c) for c in [*range(1, peers), *range(1000, 1600)])
    assert held == HELD.total + peers - 1
    assert all(agent.is_holding(c) for c in range(1600 - 4, 1600))  # the newest stay


def test_a_members_newer_session_from_one_address_replaces_its_held_older_one() -> None:
    """1,000 sessions from one address claiming one index: only the newest is held (the
    coordinator keeps a member's newest anyway); each older one is closed, no bound said."""
    agent = _agent(3, 0)
    _reached_by_service(agent, 3, range(2))
    effects: list[Effect] = []
    for conn in range(1000):
        effects += _open(agent, conn, _hello(2, 3, serial=2), OUTSIDER, 0.2)
    assert _closed(effects) == list(range(999))
    assert agent.is_holding(999)
    assert not any("closing the oldest" in line for line in _lines(effects))


# --- what a held session said (hole 5) ------------------------------------------------------------
def test_a_held_session_counts_with_its_latest_arrival_once_vouched() -> None:
    """A member arrives six times on a session held from an address the Service does not list
    yet (its views change as a peer restarts); when an answer lists it, its latest arrival
    counts and the coordinator releases."""
    agent = _agent(3, 0)
    _reached_by_service(agent, 3, range(3))
    _open(agent, 7, _hello(2, 3), _address(2), 0.2)
    _open(agent, 8, _hello(1, 3), "10.0.0.9", 0.2)  # pod 1, from a second interface
    assert agent.is_holding(8) and not agent.is_holding(7)
    for n in range(5):
        assert agent.handle(Received(8, Arrive(f"old view {n}")), 0.3) == []
    agent.handle(Received(7, Arrive(agent.reach.view())), 0.3)
    assert agent.handle(Received(8, Arrive(agent.reach.view())), 0.4) == []
    listed = (*(_address(i) for i in range(3)), "10.0.0.9")
    effects = agent.handle(Swept(Resolution(listed)), 0.5)
    assert Released in [type(e) for e in effects]
    assert not agent.is_holding(8)


def test_a_held_session_that_sends_what_a_member_may_not_is_closed() -> None:
    agent = _agent(3, 0)
    _reached_by_service(agent, 3, range(3))
    _open(agent, 8, _hello(1, 3, serial=2), OUTSIDER, 0.2)
    assert agent.handle(Received(8, Ack()), 0.3) == []  # an ack is a member's to send
    assert agent.handle(Received(8, Release("v")), 0.3) == [Close(8)]
    assert not agent.is_holding(8)


# --- dropped when it can no longer count ----------------------------------------------------------
@pytest.mark.parametrize(
    ("what", "event"),
    [
        ("its connection closed", Lost(8, "closed")),
        ("its index reached by a newer instance", Contacted(_hello(2, 3, serial=9), _address(2))),
        ("its address given for another index", LookedUp(1, Resolution((OUTSIDER,)))),
    ],
)
def test_a_held_session_is_dropped_once_it_can_no_longer_count(
    what: str, event: Lost | Contacted | LookedUp
) -> None:
    agent = _agent(3, 0)
    _reached_by_service(agent, 3, range(3))
    _open(agent, 8, _hello(2, 3, serial=2), OUTSIDER, 0.2)
    assert agent.is_holding(8)
    effects = agent.handle(event, 0.5)
    assert not agent.is_holding(8), what
    assert _closed(effects) == ([] if isinstance(event, Lost) else [8]), what


def test_an_older_instance_than_one_heard_of_is_not_held_at_all() -> None:
    agent = _agent(3, 0)
    _reached_by_service(agent, 3, range(3))
    assert _closed(_open(agent, 8, _hello(2, 3, serial=0), OUTSIDER, 0.2)) == [8]


# --- the timer, in every mode (hole 3) ------------------------------------------------------------
@pytest.mark.parametrize("probe", ["dns", "icmp", "tcp:8080"])
def test_a_held_session_is_re_checked_by_its_claimed_name_with_every_probe(probe: str) -> None:
    """Probes that cannot tell who answers find peers by name, with no Service answer to vouch
    for anything. A replaced member's session from its new address is held; its claimed name
    is asked again a second later, then twice as long after each answer, up to the cap;
    once the answer gives the new address, the session counts and the barrier releases."""
    agent = _agent(2, 0, probe=probe)
    _reached_by_name(agent, 2)
    _open(agent, 8, _hello(1, 2, serial=2), "10.0.0.9", 1.0)
    assert agent.is_holding(8) and agent.handle(Received(8, Arrive(agent.reach.view())), 1.0) == []
    times = []
    for _ in range(6):
        now = _next_lookup(agent, 1)
        times.append(now - 1.0)
        agent.handle(LookedUp(1, Resolution((_address(1),))), now)  # the old address, still
    gaps = [min(FIRST * 2**n, CAP) for n in range(6)]  # each twice the one before, to the cap
    assert times == pytest.approx([sum(gaps[: n + 1]) for n in range(6)])
    effects = agent.handle(LookedUp(1, Resolution(("10.0.0.9",))), now)
    assert Released in [type(e) for e in effects] and not agent.is_holding(8)


def test_a_lookup_that_gives_the_address_for_another_index_drops_the_claim() -> None:
    agent = _agent(3, 0, probe="dns")
    _reached_by_name(agent, 3)
    _open(agent, 8, _hello(2, 3, serial=2), "10.0.0.9", 1.0)
    _next_lookup(agent, 2)
    assert _closed(agent.handle(LookedUp(1, Resolution(("10.0.0.9",))), 2.0)) == [8]


def test_a_held_session_vouched_for_tells_the_coordinator_its_member_was_replaced() -> None:
    """Pod 2 was reached; its replacement's session comes from a new address before DNS lists
    it (and nothing else of it is heard). Once its name gives that address, the session counts
    and its hello is news: pod 2 restarted, to be reached anew before the barrier releases."""
    agent = _agent(3, 0)
    _reached_by_service(agent, 3, range(3))
    agent.handle(Opened(8, _hello(2, 3, serial=2), False, "10.0.0.9"), 1.0)
    _next_lookup(agent, 2)
    effects = agent.handle(LookedUp(2, Resolution(("10.0.0.9",))), 2.0)
    assert any("restarted" in line for line in _lines(effects)) and not agent.reach.done


# --- claims are never replayed (hole 7) -----------------------------------------------------------
def test_a_claim_from_an_unlisted_address_is_not_believed_when_the_address_is_listed() -> None:
    """An outsider at the address pod 2 gets later claims to be pod 2, with the newest of
    instance ids, and leaves. When a round lists the address, it is probed, and the real pod 2
    answering there is reached (the claim was replayed, and the real pod taken for older)."""
    agent = _agent(3, 1)
    _reached_by_service(agent, 3, range(2))
    claim = Hello(Identity("job", "", 2, 3, 29300, "f" * 24), Role.PROBE, "n")
    agent.handle(Contacted(claim, _address(2)), 0.2)
    effects = agent.handle(Swept(Resolution(tuple(_address(i) for i in range(3)))), 1.0)
    assert ProbeAddress(_address(2)) in effects
    agent.handle(AddressProbed(_address(2), Reached(2, _me(2, 3, serial=2).instance)), 1.1)
    assert agent.reach.done


def test_a_reached_peer_heard_from_a_new_address_is_probed_there_once_dns_lists_it() -> None:
    """Pod 2 restarted at a new address and said hello from there before DNS listed it: once
    its name gives that address, the address is probed, and what answers there (its new
    instance) makes the agent reach it anew."""
    agent = _agent(3, 1)
    _reached_by_service(agent, 3, range(3))
    agent.handle(Contacted(_hello(2, 3, serial=2), "10.0.0.9"), 1.0)
    assert agent.reach.peers[2].address == _address(2)  # not believed
    _next_lookup(agent, 2)
    effects = agent.handle(LookedUp(2, Resolution(("10.0.0.9",))), 1.6)
    assert ProbeAddress("10.0.0.9", pushed=True) in effects
    effects = agent.handle(AddressProbed("10.0.0.9", Reached(2, _me(2, 3, 2).instance)), 1.7)
    assert any("restarted" in line for line in _lines(effects))
    assert agent.reach.peers[2].address == "10.0.0.9"


def test_by_name_a_sighting_vouched_for_attempts_the_name_again() -> None:
    agent = _agent(3, 1, probe="icmp")
    _reached_by_name(agent, 3)
    agent.handle(Contacted(_hello(2, 3, serial=2), "10.0.0.9"), 1.0)
    _next_lookup(agent, 2)
    assert Attempt(2) in agent.handle(LookedUp(2, Resolution(("10.0.0.9",))), 1.6)


# --- strangers and give-ups (hole 9) --------------------------------------------------------------
def test_a_strangers_hello_is_never_kept_nor_asked_about() -> None:
    """A sidecar that passed serves on; a pod of another job says hello from an unlisted
    address: nothing is kept, so nothing is due (it asked the Service every second)."""
    agent = _released_sidecar(2, 1)
    assert agent.next_wakeup() == math.inf
    assert agent.handle(Contacted(_hello(0, 2, job="another-job"), OUTSIDER), 1.0) == []
    assert agent.next_wakeup() == math.inf


def test_a_sighting_dns_never_vouches_for_is_given_up_once_a_healthy_cluster_would_have() -> None:
    """A pod of the Job is heard from an address DNS does not list (a replaced pod, maybe):
    its name is asked again, each time twice as long after, up to the cap, until the time a
    healthy cluster takes to publish a pod has passed; then the claim is forgotten."""
    agent = _released_sidecar(2, 1)
    agent.handle(Contacted(_hello(0, 2, serial=2), OUTSIDER), 1.0)
    checks = []
    while (now := agent.next_wakeup()) < math.inf:
        if Lookup(0) in agent.poll(now):
            checks.append(now - 1.0)
        agent.handle(LookedUp(0, Resolution((_address(0),))), now)
    assert checks[-2] < WARN_AFTER <= checks[-1] < WARN_AFTER + CAP


# --- what it says (hole 14) -----------------------------------------------------------------------
def test_a_held_session_is_named_as_connected_from_an_unlisted_address() -> None:
    agent = _agent(2, 0, probe="dns", timeout="5s")
    _reached_by_name(agent, 2)
    _open(agent, 8, _hello(1, 2, serial=2), "10.0.0.9", 1.0)
    [(index, why)] = agent.status.missing()
    assert index == 1
    assert why.startswith("barrier: connected from 10.0.0.9, which DNS does not list")


def test_a_member_says_what_it_waits_for_after_reaching_a_restarted_peer_again() -> None:
    member = Member(now=0.0, rand=lambda: 0.5)
    assert member.last_problem == "not connected to the coordinator yet"
    member.opened(1, 0.0)
    assert member.last_problem == "connected, waiting for the others"
    member.reached_all("v1", 0.1)
    assert member.last_problem == "arrived, waiting for the verdict"
    member.unreached(0.2)
    assert member.last_problem == "re-reaching a restarted peer"
    member.reached_all("v2", 0.3)
    assert member.last_problem == "arrived, waiting for the verdict"
    member.disconnected("connection closed", 0.4)
    assert member.last_problem == "coordinator: connection closed"
