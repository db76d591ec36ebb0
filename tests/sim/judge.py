"""What the barrier tests check about a simulated cluster's run: the guarantee
(tests/sim/safety.py) in each of its barriers, judged from that barrier's own record.

Each barrier namespace (the start barrier, ``run --exit-barrier``'s exit barrier, each named
barrier) is a barrier of its own, with its own sessions, decisions, releases and record of who
heard whom (``Cluster.truths``); the instances of one process in several barriers share an id,
so one record each keeps them apart. With a probe that says no hello the record says so
(``Process.instances``) and the checker reads views per index (docs/guarantee.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agent.core.effects import Released
from tests.sim.safety import violations

if TYPE_CHECKING:
    from tests.sim.cluster import Cluster

__all__ = ["describe", "unsafe"]


def unsafe(c: Cluster) -> list[str]:
    out = []
    for barrier, truth in c.truths.items():
        found = violations(c.peers, truth)
        out += [f"barrier {barrier!r}: {v}" if barrier else v for v in found]
    return out


def describe(c: Cluster) -> str:
    """Every instance's story, one line each: what a failing test prints."""
    rows = []
    for n in c.nodes:
        how = n.verdict.kind if isinstance(n.verdict, Released) else n.verdict
        rows.append(
            f"{n} {n.me.uid}/{n.me.peers} {n.state} start={n.started_at:.3f} "
            f"reach={n.reach_done_at} verdict={n.verdict_at} left={n.left_at} {how}"
        )
    return "\n".join(rows)
