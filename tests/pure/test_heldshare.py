"""One bound for what a process holds for unlisted parties, over every barrier it serves.

A sidecar runs the start barrier and up to 64 named barriers on one port, each a core of its
own. The held-session bound (4 a source address, 4 a claimed pod, 256 in all) and the
"DNS does not list" lines were kept per instance, so 16 unlisted addresses opening sessions to
each of a sidecar's 65 instances were held 16 times over (the reviewer's run: 270 descriptors to
1,024 in 4 s, and 6,493 warnings naming the same 16 addresses). Here the real cores of one
coordinator pod, several barrier instances sharing one ``HeldShare`` as the mux gives them, on
a hand-held clock; the real-process version is tests/faults/test_named_held.py.
"""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.config.parse import build_config
from agent.core.agent import Agent
from agent.core.effects import Close, Effect, Report
from agent.core.heldshare import HELD, HeldShare
from agent.core.inputs import AddressProbed, Contacted, Lost, Opened, Reached, Resolution, Swept
from agent.core.log import LogLevel
from agent.io.limits import barriers_covered, fds_needed
from agent.protocol.instance import instance_id
from agent.protocol.wire import Hello, Identity, Role, named_barrier
from agent.topology.podfiles import PodFacts
from tests.support.budget import budget

pytestmark = pytest.mark.timeout(30)

PEERS = 5
#: the start barrier and 8 named ones, as a sidecar serves them
BARRIERS = ["", *(named_barrier(f"ckpt-{n}") for n in range(8))]


def _me(index: int, barrier: str, serial: int = 1) -> Identity:
    who = Identity("job", "", index, PEERS, 29300, instance_id(serial, index))
    return dataclasses.replace(who, barrier=barrier) if barrier else who


def _listed(index: int) -> str:
    return f"10.0.0.{index + 1}"


def _coordinators(share: HeldShare) -> list[Agent]:
    """Pod 0's instances, one per barrier, sharing ``share``; each has reached every pod by
    the Service's answer and holds a session that counts from every member."""
    config = build_config(
        "sidecar",
        {"peers": str(PEERS), "index": "0", "service": "svc", "namespace": "ns"},
        PodFacts(hostname="job-0"),
    )
    agents = []
    for barrier in BARRIERS:
        agent = Agent(config, me=_me(0, barrier), now=0.0, rand=lambda: 0.5, held=share)
        agent.begin(0.0)
        agent.handle(Swept(Resolution(tuple(_listed(i) for i in range(PEERS)))), 0.1)
        for i in range(PEERS):
            agent.handle(AddressProbed(_listed(i), Reached(i, _me(i, barrier).instance)), 0.1)
        for i in range(1, PEERS):
            assert _closed(_open(agent, i, _hello(i, barrier), _listed(i), 0.2)) == []
        agents.append(agent)
    return agents


def _hello(index: int, barrier: str, serial: int = 1) -> Hello:
    return Hello(_me(index, barrier, serial), Role.MEMBER, "n")


def _open(agent: Agent, conn: int, hello: Hello, address: str, now: float) -> list[Effect]:
    """A member's connection as ``Contacts.serve`` posts it: its hello, then its session."""
    out = agent.handle(Contacted(hello, address), now)
    return out + agent.handle(Opened(conn, hello, False, address), now)


def _closed(effects: list[Effect]) -> list[int]:
    return [e.conn for e in effects if isinstance(e, Close)]


def _outsider(k: int) -> str:
    return f"127.0.20.{1 + k % 16}"


def _flood(agents: list[Agent], per_barrier: int, now: float) -> dict[int, list[Effect]]:
    """The reviewer's outsider: to every barrier instance, ``per_barrier`` member sessions
    from 16 loopback addresses DNS does not list, claiming pods 1-4 in turn (conns 100...)."""
    effects: dict[int, list[Effect]] = {}
    for n, (agent, barrier) in enumerate(zip(agents, BARRIERS, strict=False)):
        effects[n] = []
        for k in range(per_barrier):
            hello = _hello(1 + k % (PEERS - 1), barrier, serial=2)
            effects[n] += _open(agent, 100 + k, hello, _outsider(k), 0.3)
    return effects


def test_sessions_from_unlisted_addresses_are_held_once_for_every_barrier_of_the_process() -> None:
    """16 sessions from 16 unlisted addresses claiming pods 1-4, to each of 9 barrier
    instances: 144 sessions. Held were 16 an instance (144); now at most 4 claiming each pod
    in the whole process (16 in all), the rest closed; no admitted session is closed, and the
    bound is said once for the process."""
    share = HeldShare()
    agents = _coordinators(share)
    effects = _flood(agents, 16, 0.3)
    held = [sum(a.is_holding(100 + k) for k in range(16)) for a in agents]
    assert sum(held) == len(share) == HELD.per_index * (PEERS - 1), held
    assert held[0] == 16 and sum(held[1:]) == 0  # the first barrier's room; others closed theirs
    for n, agent in enumerate(agents):
        closed = _closed(effects[n])
        assert not set(closed) & set(range(1, PEERS)), closed  # admitted: never closed
        assert all(agent.is_holding(c) or c in closed for c in range(100, 116))
    lines = [e.line.message for out in effects.values() for e in out if isinstance(e, Report)]
    assert sum("closing the oldest" in line for line in lines) == 1


def test_an_instance_that_ends_leaves_its_room_to_the_others() -> None:
    """The start barrier holds the 16 an outsider's sessions may fill; once it ends (a named
    barrier withdrawn, or timed out), another instance holds the same outsider's sessions."""
    share = HeldShare()
    first, second, *_ = _coordinators(share)
    _flood([first], 16, 0.3)
    flooded = [_open(second, 200 + k, _hello(1, BARRIERS[1], 2), _outsider(k), 0.4) for k in (0, 1)]
    assert [_closed(out) for out in flooded] == [[200], [201]]  # no room: the newcomer goes
    first.end()
    assert len(share) == 0
    assert _closed(_open(second, 300, _hello(1, BARRIERS[1], 2), _outsider(0), 0.5)) == []
    assert second.is_holding(300)


def test_an_unlisted_address_is_named_once_for_the_process_not_once_a_barrier() -> None:
    """Sessions from 16 loopback addresses to 9 barriers, closed and opened again three times,
    each barrier's Service answer not listing them: one debug line and one warning name each
    address, for the whole process (once a barrier, and again after every churn, before)."""
    share = HeldShare()
    agents = _coordinators(share)
    named: dict[LogLevel, list[str]] = {LogLevel.DEBUG: [], LogLevel.WARNING: []}
    for churn in range(3):
        now = 1.0 + churn
        _flood(agents, 16, now)
        for agent in agents:
            out = agent.handle(Swept(Resolution(tuple(_listed(i) for i in range(PEERS)))), now)
            for effect in out:
                if isinstance(effect, Report) and "DNS does not list" in effect.line.message:
                    named[effect.line.level] += effect.line.fields["addresses"]
            for k in range(16):
                agent.handle(Lost(100 + k, "closed"), now)
    outsiders = sorted(_outsider(k) for k in range(16))
    assert sorted(named[LogLevel.DEBUG]) == outsiders
    assert sorted(named[LogLevel.WARNING]) == outsiders


@settings(max_examples=budget(3), deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 3), st.integers(0, 5), st.integers(0, 7), st.booleans()),
        max_size=120,
    )
)
def test_no_process_bound_is_passed_and_only_the_holders_own_or_the_newcomer_goes(
    steps: list[tuple[int, int, int, bool]],
) -> None:
    """Owners hold and drop sessions in any order: the process never holds more than its
    bounds from one address, claiming one index, or in all; a hold either fits, or closes
    only sessions of the owner that holds, or is refused; what is held is always findable."""
    share = HeldShare()
    owners = [share.join() for _ in range(4)]
    held: dict[tuple[int, int], tuple[int, str]] = {}
    for conn, (who, index, source, drop) in enumerate(steps):
        owner, address = owners[who], str(source)
        if drop and held:
            key = next(iter(held))
            share.drop(*key)
            del held[key]
            continue
        room = share.make_room(owner, index, address, unconnected=0)
        if room is not None:
            assert all((owner, c) in held for c in room)  # only the holder's own
            for c in room:
                del held[(owner, c)]
            share.add(owner, conn, index, address)
            held[(owner, conn)] = (index, address)
        assert len(share) == len(held) <= HELD.total
        assert all(sum(a == s for _, a in held.values()) <= HELD.per_address for s in "01234567")
        assert all(sum(i == j for i, _ in held.values()) <= HELD.per_index for j in range(6))


@settings(max_examples=budget(1), deadline=None)
@given(st.integers(1, 20_000), st.integers(1, 65), st.sampled_from([0, 192]))
def test_the_limit_a_sidecar_checks_covers_exactly_the_barriers_it_says(
    peers: int, barriers: int, health: int
) -> None:
    """The open files ``barriers`` barriers of ``peers`` need (with ``health`` connections of a
    health port) cover that many, and one fewer file one barrier fewer: the count a sidecar says
    at start is the one it has room for."""
    need = fds_needed(peers, barriers, health)
    assert barriers_covered(peers, need, health) == barriers
    assert barriers_covered(peers, need - 1, health) == barriers - 1
