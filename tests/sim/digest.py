"""A scale run's fingerprint without the CPU model: proof that a speed-up changed no decision.

``python -m tests.sim.digest [--sizes 500,1000,5000] [--faults 500,1000]``: the runs of
tests/sim/scale.py (the same seeds, faults and stop rule) with no CPU charged, so each is a
function of its seed alone, and one SHA-256 a run of what every instance did (its DNS
queries, sessions, messages, verdict time, exit time and peak sockets) and of the checker's
record (every barrier's :class:`~tests.sim.truth.Truth`). A change to the cores or the
simulator that keeps every decision prints the same digests before and after; one that moves
any event by a draw of the network's delays prints others.
"""

from __future__ import annotations

import argparse
import functools
import gc
import hashlib
import random
import sys
import time
from collections.abc import Iterator, Sequence

from agent.core.effects import Released
from agent.core.graph import sparse_degree
from tests.sim.cluster import Cluster
from tests.sim.scale import FAULTS_END, HORIZON, add_faults
from tests.sim.truth import Truth

__all__ = ["digest", "main", "simulate"]


def simulate(n: int, *, faults: bool = False, tally: bool = False) -> Cluster:
    """``tests.sim.scale.run``'s sparse run of ``n`` pods, without the CPU model; ``tally``:
    each core call's CPU tallied to its pod, nothing charged (``Clock.cpu_tally``)."""
    c = Cluster(n, mode="wait", degree=sparse_degree(n), seed=1)
    if tally:
        c.cpu_tally = time.thread_time_ns
    if faults:
        add_faults(c, c.graph, random.Random(2))
    for index in range(n):
        c.at(0.0, functools.partial(c.start, index))
    gc.disable()  # as scale.run: the collector's timing cannot move a run without the CPU model
    try:
        t = 0.0
        while t < HORIZON:
            t += 1.0
            c.run_until(t)
            current = c.current().values()
            released = sum(isinstance(node.verdict, Released) for node in current)
            if released == n and (not faults or t >= FAULTS_END):
                break
    finally:
        gc.enable()
    return c


def _truth(truth: Truth) -> Iterator[str]:
    """The checker's record, field by field (its graph is the Job's, the same by its seed)."""
    yield f"seq {truth.seq} times {truth.times!r}"
    yield f"processes {sorted(truth.processes.items())!r}"
    yield f"heard {sorted(truth.heard.items())!r}"
    yield f"sessions {truth.sessions!r}"
    yield f"released {sorted(truth.released_views.items())!r}"
    yield f"aggregates {sorted(truth.aggregates.items())!r}"
    yield f"verdicts {sorted(truth.verdicts.items())!r}"
    yield f"left {sorted(truth.left.items())!r}"


def _lines(c: Cluster) -> Iterator[str]:
    for node in c.nodes:
        yield (
            f"{node!r} {node.state} q={node.queries} s={node.sessions} m={node.messages} "
            f"sockets={node.most_sockets} start={node.started_at!r} reach={node.reach_done_at!r} "
            f"verdict={node.verdict_at!r} {type(node.verdict).__name__} left={node.left_at!r} "
            f"exited={node.exited} acked={node.all_acked_at!r} "
            f"withdrawn={node.pod.withdrawn_at!r}"
        )
    for barrier, truth in sorted(c.truths.items()):
        yield f"barrier {barrier!r}"
        yield from _truth(truth)
    yield f"now {c.now!r} violations {c.violations!r}"


def digest(c: Cluster) -> str:
    h = hashlib.sha256()
    for line in _lines(c):
        h.update(line.encode())
        h.update(b"\n")
    return h.hexdigest()


def _sizes(text: str) -> list[int]:
    return [int(s) for s in text.split(",") if s]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.sim.digest", description=__doc__)
    parser.add_argument("--sizes", type=_sizes, default=[500, 1000, 5000])
    parser.add_argument("--faults", type=_sizes, default=[500, 1000])
    # A compiled core's CPU factor (tests/sim/scale.py): the same digest interpreted and
    # compiled proves the same calls, so the two totals compare call for call.
    parser.add_argument("--cpu", action="store_true", help="print the cores' CPU in all")
    args = parser.parse_args(argv)
    plan = [(n, False) for n in args.sizes] + [(n, True) for n in args.faults]
    for n, faults in plan:
        began = time.monotonic()
        c = simulate(n, faults=faults, tally=args.cpu)
        took = time.monotonic() - began
        kind = "faults" if faults else "-"
        cpu = f", cores' CPU {sum(p.cpu for p in c.pods):.2f} s" if args.cpu else ""
        print(f"{n:>7} {kind:>6} {digest(c)} ({len(c.nodes)} instances, {took:.1f} s{cpu})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
