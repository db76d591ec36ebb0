"""What the explorer checks in its world (tests/sim/world.py), and how it tells states apart."""

from __future__ import annotations

from typing import TYPE_CHECKING

from agent.config.parse import parse_probe
from agent.core.discovery import ByService
from agent.core.effects import Aborted, Released
from agent.core.roles import Coordinator, Member
from tests.sim.judge import per_index
from tests.sim.safety import Release, violations

if TYPE_CHECKING:
    from tests.sim.world import World

__all__ = ["fingerprint", "unsafe"]


def unsafe(world: World) -> list[str]:
    """The safety property for the Job's pods in each barrier; and since they all agree on the
    job, none of them may abort (only an outsider disagrees)."""
    out: list[str] = []
    released: dict[str, list[Release]] = {}
    for inst in world.insts:
        verdict = inst.agent.verdict
        if inst.outsider:
            continue
        if isinstance(verdict, Aborted):
            out.append(f"{inst.me.instance} aborted: {verdict.reason}")
        if inst.released_at is not None and isinstance(verdict, Released):
            counted = verdict.kind.counted
            release = Release(inst.me.instance, inst.released_at, counted)
            released.setdefault(inst.barrier, []).append(release)
    blind = not parse_probe(world.probe).says_hello  # instances cannot be told apart
    for barrier in {*released, *world.decisions, *world.heard}:
        heard, decisions = world.heard.get(barrier, {}), world.decisions.get(barrier, [])
        truth = (heard, decisions, released.get(barrier, []))
        found = violations(world.n, *(per_index(*truth) if blind else truth))
        out += [f"barrier {barrier!r}: {v}" if barrier else v for v in found]
    return out


def fingerprint(world: World) -> object:
    rows = []
    for inst in world.insts:
        agent, side = inst.agent, inst.agent.side
        reach = tuple((p.reached, p.instance, p.newest, p.in_flight) for p in agent.reach.peers)
        state: tuple[object, ...] = ()
        if isinstance(side, Coordinator):
            state = (side.view, tuple(sorted(side._matching)), tuple(sorted(side._acked)))
        elif isinstance(side, Member):
            state = (side.conn, side.view, side._sent, side._released_view, side._peer_says)
        service = agent.discovery
        rows.append(
            (
                inst.alive,
                agent.finished,
                repr(agent.verdict),
                reach,
                state,
                isinstance(service, ByService)
                and (
                    service.published,
                    frozenset(service.book._identified),
                    service.rounds._asking,
                ),
            )
        )
    pending = tuple(sorted(repr(p) for p in world.pending))
    queues = tuple(sorted((k, tuple(map(repr, v))) for k, v in world.queues.items() if v))
    lagging = tuple(sorted(world.lagging))
    return (tuple(rows), pending, queues, world.restarts_left, world.outsiders_left, lagging)
