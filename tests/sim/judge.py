"""What the barrier tests check about a simulated cluster's run: the safety property
(tests/sim/safety.py) in each of its barriers, against that barrier's ground truth.

Each barrier namespace (the start barrier, ``run --exit-barrier``'s exit barrier, each named
barrier) is a barrier of its own, with its own decisions, releases and record of who heard
whom (``Cluster.truths``). With a probe that says no hello (``tcp:PORT``, ``icmp``, ``dns``)
nobody can tell instances apart, and the guarantee holds per index, not per instance
(docs/guarantee.md): every instance is then read as its index.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

from agent.core.effects import Released
from agent.protocol.instance import instance_id
from tests.sim.safety import Decision, Release, index_of, violations

if TYPE_CHECKING:
    from tests.sim.cluster import Cluster

__all__ = ["as_index", "describe", "per_index", "unsafe"]

Heard = Mapping[tuple[str, str], float]


def as_index(index: int) -> str:
    """The id that stands for every instance of ``index`` where instances cannot be told apart."""
    return instance_id(0, index)


def unsafe(c: Cluster) -> list[str]:
    out = []
    for barrier, truth in c.truths.items():
        released = [
            Release(n.me.instance, n.verdict_at, n.counted)
            for n in c.nodes
            if n.me.barrier == barrier
            and c.is_ours(n.me)
            and not n.pod.outsider
            and isinstance(n.verdict, Released)
            and n.verdict_at is not None
        ]
        heard: Heard = truth.heard
        decisions = truth.decisions
        if not c.says_hello:
            heard, decisions, released = per_index(heard, decisions, released)
        found = violations(c.peers, heard, decisions, released)
        out += [f"barrier {barrier!r}: {v}" if barrier else v for v in found]
    return out


def per_index(
    heard: Heard, decisions: list[Decision], released: list[Release]
) -> tuple[Heard, list[Decision], list[Release]]:
    """The ground truth read per index: every instance as its index's (``as_index``)."""

    def of(instance: str) -> str:
        return as_index(index_of(instance))

    by_index: dict[tuple[str, str], float] = {}
    for (a, b), t in heard.items():
        key = (of(a), of(b))
        by_index[key] = min(t, by_index.get(key, math.inf))
    return (
        by_index,
        [
            Decision(
                d.at,
                of(d.by),
                {i: as_index(i) for i in d.view},
                {i: of(x) for i, x in d.arrived.items()},
            )
            for d in decisions
        ],
        [Release(of(r.instance), r.at, r.counted) for r in released],
    )


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
