"""A hello heard before its index is reached, over the pure core: a scenario table.

Pod 1 of 3 (bulk discovery, no token) hears a hello claiming index 2 from an address DNS does
not list yet, before it has reached index 2; then it reaches index 2 somewhere; then its name
is asked again. The sighting lies dormant (no lookup) until index 2 is reached; reached at the
sighted address, it is answered; reached elsewhere, it is checked, and what answers at the
sighted address, once DNS gives it for index 2, counts (tests/sim/test_early_hello.py has the
schedules that found the hole). Events in, effects out, on a hand-held clock.
"""

from __future__ import annotations

import pytest

from agent.config.parse import build_config
from agent.core.admission import HELD, SIGHTED
from agent.core.agent import Agent
from agent.core.effects import Effect, Lookup, ProbeAddress, Report
from agent.core.inputs import AddressProbed, Contacted, LookedUp, Opened, Reached, Resolution, Swept
from agent.core.timing import DEFAULT_TIMING
from agent.protocol.instance import instance_id
from agent.protocol.wire import Hello, Identity, Role
from agent.topology.podfiles import PodFacts
from agent.values import value

pytestmark = pytest.mark.timeout(20)

WARN_AFTER, CAP = DEFAULT_TIMING.unlisted_warn_after, DEFAULT_TIMING.recheck_cap
OLD, NEW, OUTSIDER = "10.0.0.3", "10.0.0.9", "10.9.9.9"  # pod 2's old and new address


def _agent(index: int = 1, peers: int = 3) -> Agent:
    values = {"peers": str(peers), "index": str(index), "service": "svc", "namespace": "ns"}
    config = build_config("wait", values, PodFacts(hostname=f"job-{index}"))
    return Agent(config, me=_identity(index, 1, peers), now=0.0, rand=lambda: 0.5)


def _identity(index: int, serial: int, peers: int = 3) -> Identity:
    return Identity("job", "", index, peers, 29300, instance_id(serial, index))


def _hello(index: int, serial: int, role: Role = Role.PROBE) -> Hello:
    return Hello(_identity(index, serial), role, "n")


def _lines(effects: list[Effect]) -> list[str]:
    return [e.line.message for e in effects if isinstance(e, Report)]


def _polled_until(agent: Agent, until: float) -> list[Effect]:
    """Every effect ``poll`` gives at each wake-up up to ``until`` (no event in between)."""
    out: list[Effect] = []
    while (now := agent.next_wakeup()) <= until:
        out += agent.poll(now)
    return out


@value
class Row:
    name: str
    heard_from: str  # where the hello claiming index 2 came from, before index 2 was reached
    heard_serial: int  # the instance it named
    reached_at: str  # where index 2 was reached then (its instance 1, the one there)
    named: tuple[str, ...]  # what DNS gives for index 2's name when it is asked again
    probed: str | None  # the address then probed because of the sighting (None: none)
    finally_at: str  # where index 2 counts as reached at the end


TABLE = [
    Row("a replacement, the old pod reached first", NEW, 2, OLD, (OLD, NEW), NEW, NEW),
    Row("a replacement not listed yet at the check", NEW, 2, OLD, (OLD,), None, OLD),
    Row("its own first hello, reached there", OLD, 1, OLD, (OLD,), None, OLD),
    Row("an outsider claiming index 2", OUTSIDER, 7, OLD, (OLD,), None, OLD),
]


def _reach_all(agent: Agent, two_at: str, now: float) -> list[Effect]:
    """A round lists index 0, 1 and ``two_at``; each answers with its instance 1."""
    agent.handle(Swept(Resolution(("10.0.0.1", "10.0.0.2", two_at))), now)
    for index, address in ((0, "10.0.0.1"), (1, "10.0.0.2")):
        agent.handle(AddressProbed(address, Reached(index, _identity(index, 1).instance)), now)
    return agent.handle(AddressProbed(two_at, Reached(2, _identity(2, 1).instance)), now)


def _checks_of_two(agent: Agent, named: tuple[str, ...], since: float) -> list[str] | None:
    """Each lookup of index 2's name that falls due is answered with ``named``: the addresses
    probed because of it, or None when none falls due."""
    probes, asked = [], False
    while (now := agent.next_wakeup()) < since + WARN_AFTER + 2 * CAP:
        if Lookup(2) in agent.poll(now):
            asked = True
            answer = agent.handle(LookedUp(2, Resolution(named)), now)
            probes += [e.address for e in answer if isinstance(e, ProbeAddress)]
    return probes if asked else None


@pytest.mark.parametrize("row", TABLE, ids=[row.name for row in TABLE])
def test_a_hello_before_its_index_is_reached(row: Row) -> None:
    agent = _agent()
    agent.begin(0.0)
    agent.handle(Contacted(_hello(2, row.heard_serial), row.heard_from), 0.05)
    assert Lookup(2) not in _polled_until(agent, 5.0)  # dormant while index 2 is not reached
    effects = _reach_all(agent, row.reached_at, 5.0)
    assert agent.reach.done and agent.reach.peers[2].address == row.reached_at
    assert ProbeAddress(row.heard_from, pushed=True) not in effects  # DNS has not said yet
    probes = _checks_of_two(agent, row.named, 5.0)
    if row.heard_from == row.reached_at:
        assert probes is None  # answered where index 2 was reached: never asked about
    else:
        assert probes == ([row.probed] if row.probed else [])
    if row.probed:
        instance = _identity(2, row.heard_serial).instance
        answer = agent.handle(AddressProbed(row.probed, Reached(2, instance)), 70.0)
        assert any("restarted" in line for line in _lines(answer))
    assert agent.reach.peers[2].address == row.finally_at
    assert Lookup(2) not in _polled_until(agent, 1000.0)  # given up, or answered


def test_the_oldest_sighting_goes_first_and_a_held_session_stays() -> None:
    """Coordinator 0 holds member 1's session from an unlisted address, and hears index 2
    claimed from more addresses than ``SIGHTED.per_index`` before reaching it: once index 2 is
    reached and DNS gives all of them, only the newest ``per_index`` are probed, and the held
    session was never touched (a sighting is never a session)."""
    agent = _agent(index=0)
    agent.begin(0.0)
    agent.handle(Opened(5, _hello(1, 1, Role.MEMBER), False, "10.1.0.1"), 0.1)
    heard = [f"10.2.0.{k}" for k in range(SIGHTED.per_index + 1)]
    for k, address in enumerate(heard):
        agent.handle(Contacted(_hello(2, 2 + k), address), 0.2)
    _reach_all(agent, OLD, 1.0)
    assert agent.is_holding(5) and HELD.per_index >= 1
    assert _checks_of_two(agent, (OLD, *heard), 1.0) == heard[1:]
