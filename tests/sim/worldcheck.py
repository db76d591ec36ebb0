"""What the explorer checks in its world (tests/sim/world.py), and how it tells states apart."""

from __future__ import annotations

from typing import TYPE_CHECKING

from agent.core.discovery import ByService
from agent.core.roles import Coordinator, Member
from agent.protocol.wire import START_BARRIER
from tests.sim.safety import violations

if TYPE_CHECKING:
    from tests.sim.world import Inst, World

__all__ = ["fingerprint", "unsafe", "working"]


def unsafe(world: World) -> list[str]:
    """The guarantee for the Job's pods in each barrier, judged from that barrier's record
    (safety.py); since they all agree on the job, none of them may abort (only an outsider
    disagrees)."""
    out: list[str] = []
    for barrier, truth in world.truths.items():
        found = violations(world.n, truth)
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


def working(world: World) -> list[Inst]:
    """The start barriers released whose workload still runs (``run --exit-barrier``), or
    whose clients have not asked for a named barrier yet (``named``)."""
    if world.mode not in ("exit", "named"):
        return []
    begun = {i.process for i in world.insts if i.barrier != START_BARRIER}
    return [
        i
        for i in world.insts
        if i.alive
        and i.barrier == START_BARRIER
        and i.released_at is not None
        and not i.outsider
        and i.process not in begun
    ]
