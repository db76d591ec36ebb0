"""``make scale``'s in-memory row on several OS processes: the cluster split by tree groups
(tests/sim/part.py), each part a forked process with a heap of its own, run in windows of the
network's least delay and synchronised conservatively over pipes by this (the parent) process.

Each window [t, t + lookahead): the parent sends each part the other's messages of the last
window and the window's end; each runs every event due before it and answers with its own
messages across and when its next event is due; the next window begins at the earliest of
those (empty stretches skipped). As ``tests.sim.scale.run`` does, every simulated second ends
a window and the parts count their released pods; the run stops once every pod is released.
Then each part sends its figures and its record of what happened (truth.py), and the parent
merges the records into one, in the order of simulated time (two steps at one time in two parts
are concurrent: neither caused the other, as a message takes at least the lookahead), and
judges it with the same checker (judge.py) a one-process run has.
"""

from __future__ import annotations

import argparse
import functools
import gc
import multiprocessing
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection

from agent.core.effects import Released
from agent.core.graph import sparse_degree
from tests.sim.part import Item, Part, owner_split
from tests.sim.safety import violations
from tests.sim.scale import SHOWN, Row
from tests.sim.truth import Truth, Verdict, sparse_graph

#: a verdict as the record keeps it (truth.Verdict), as a tuple across a pipe
Decided = tuple[int, bool, bool, bool]

__all__ = ["Figures", "findings", "main", "merge_truths", "row", "simulate"]


@dataclass
class Figures:
    """What one part reports of its own pods once the run ends."""

    queries: dict[int, int]  # DNS queries by index (its agents')
    sessions_max: int
    messages_max: int
    last_start: float
    last_release: float
    root_cpu: float | None  # the root's pod's CPU, in the part that holds it
    cpu_total: float
    released: int
    violations: list[str]
    truths: dict[str, Truth]
    verdicts: dict[str, dict[str, Decided]]  # each truth's, as tuples
    now: float
    cpu: float = 0.0  # the part's process's CPU, all of it (its core calls and the simulator's)
    idle: float = 0.0  # real seconds it waited for a window


def _figures(c: Part, idle: float) -> Figures:
    nodes = [n for n in c.current().values()]
    queries: dict[int, int] = {}
    for m in c.nodes:
        queries[m.me.index] = queries.get(m.me.index, 0) + m.queries
    root = c.pods_of[0][-1] if c.mine(0) else None
    verdicts = {}
    for barrier, truth in c.truths.items():
        truth._ends.clear()  # keyed by this part's ends: nothing the checker reads
        truth.graph = None  # the parent's own, from the same Job
        # a compiled frozen dataclass does not unpickle (its __setattr__ refuses): as tuples
        verdicts[barrier] = {
            i: (v.seq, v.released, v.decided, v.alone) for i, v in truth.verdicts.items()
        }
        truth.verdicts.clear()
    return Figures(
        queries=queries,
        sessions_max=max(m.sessions for m in c.nodes),
        messages_max=max(m.messages for m in c.nodes),
        last_start=max(n.started_at for n in nodes),
        last_release=max((n.verdict_at or c.now) for n in nodes),
        root_cpu=None if root is None else root.cpu,
        cpu_total=sum(p.cpu for p in c.pods),
        released=sum(isinstance(n.verdict, Released) for n in nodes),
        violations=c.violations,
        truths=c.truths,
        verdicts=verdicts,
        now=c.now,
        cpu=time.process_time(),
        idle=idle,
    )


def _part(
    pipe: Connection, n: int, first: int, last: int, degree: int | None, cpu: bool, scale: float
) -> None:
    """A part's process: its window loop, on the parent's word."""
    meter: Callable[[], int] | None = time.thread_time_ns if cpu else None
    c = Part(n, first, last, degree=degree, seed=1, cpu_meter=meter)
    c.cpu_scale = scale
    for index in range(n):
        c.at(0.0, functools.partial(c.enter, index))
    gc.freeze()
    gc.disable()  # as tests.sim.scale.run: the run leaves almost no cycles
    idle = 0.0  # seconds waiting for the other part's window (its work, the pipes)
    while True:
        began = time.monotonic()
        until, inbound, count = pipe.recv()
        idle += time.monotonic() - began
        if until is None:
            break
        c.take(inbound)
        c.run_before(until)
        out, c.outbox = c.outbox, []
        released = _released(c) if count else -1
        pipe.send((out, c.next_due, released))
    pipe.send(_figures(c, idle))
    pipe.close()


def _released(c: Part) -> int:
    return sum(isinstance(x.verdict, Released) for x in c.current().values())


def simulate(
    n: int,
    *,
    parts: int = 2,
    degree: int | None = None,
    cpu: bool = False,
    cpu_scale: float = 1.0,
    horizon: float = 120.0,
) -> tuple[list[Figures], Truth]:
    """Run ``n`` pods fault-free (``--reach sparse`` of ``degree``) in ``parts`` processes; the
    parts' figures and the merged record of the start barrier."""
    if parts != 2:
        raise ValueError("two parts: each window's messages go to the other")
    bounds = owner_split(n, parts)
    lookahead = Part(1, 0, 1).lookahead
    ctx = multiprocessing.get_context("fork")  # the compiled modules, loaded once
    pipes, procs = [], []
    for p in range(parts):
        mine, theirs = ctx.Pipe()
        args = (theirs, n, bounds[p], bounds[p + 1], degree, cpu, cpu_scale)
        proc = ctx.Process(target=_part, args=args, daemon=True)
        proc.start()
        pipes.append(mine)
        procs.append(proc)
    try:
        _windows(pipes, n, lookahead, horizon)
        for pipe in pipes:
            pipe.send((None, [], False))
        figures: list[Figures] = [pipe.recv() for pipe in pipes]
    finally:
        for proc in procs:
            proc.join(timeout=60)
            if proc.is_alive():
                proc.kill()
    merged = merge_truths(
        [f.truths.get("", Truth()) for f in figures], [f.verdicts.get("", {}) for f in figures]
    )
    merged.graph = sparse_graph(n, "uid-1", degree)
    merged.key = b"uid-1"
    return figures, merged


def _windows(pipes: list[Connection], n: int, lookahead: float, horizon: float) -> None:
    """The windows, until every pod is released at a whole second or ``horizon`` passes."""
    inbound: list[list[Item]] = [[], []]
    due = [0.0, 0.0]
    second = 1.0
    while second <= horizon:
        start = min(due + [when for items in inbound for when, _, _ in items])
        until = min(max(start, 0.0) + lookahead, second)
        count = until >= second
        for p, pipe in enumerate(pipes):
            pipe.send((until, inbound[p], count))
        replies = [pipe.recv() for pipe in pipes]
        inbound = [replies[1][0], replies[0][0]]
        due = [replies[0][1], replies[1][1]]
        if count:
            if replies[0][2] + replies[1][2] == n:
                return
            second += 1.0


def merge_truths(truths: list[Truth], verdicts: list[dict[str, Decided]] | None = None) -> Truth:
    """One record from the parts': every step renumbered in the order of simulated time (a
    part's own in its order), so the checker reads it as a one-process run's."""
    order = sorted(
        (when, p, seq) for p, t in enumerate(truths) for seq, when in enumerate(t.times, 1)
    )
    renumber = [dict[int, int]() for _ in truths]
    merged = Truth()
    for new, (when, p, seq) in enumerate(order, 1):
        renumber[p][seq] = new
        merged.times.append(when)
    merged.seq = len(order)
    for p, t in enumerate(truths):
        mine = t.verdicts if verdicts is None else verdicts[p]
        _merge_one(merged, t, {i: _tuple(v) for i, v in mine.items()}, renumber[p])
    merged.sessions.sort(key=lambda s: s.opened)
    for session in merged.sessions:
        merged.by_server.setdefault(session.server, []).append(session)
    return merged


def _tuple(v: Verdict | Decided) -> Decided:
    return v if isinstance(v, tuple) else (v.seq, v.released, v.decided, v.alone)


def _merge_one(
    merged: Truth,
    t: Truth,
    verdicts: Mapping[str, Decided],
    new: dict[int, int],
) -> None:
    def at(seq: int | None) -> int | None:
        return None if seq is None else new[seq]

    for instance, process in t.processes.items():
        process.started = new[process.started]
        process.gone = at(process.gone)
        merged.processes.setdefault(instance, process)
    for pair, (seq, address) in t.heard.items():
        merged.heard[pair] = (new[seq], address)
    for s in t.sessions:
        s.opened = new[s.opened]
        s.arrivals = [(new[q], view) for q, view in s.arrivals]
        s.acked, s.ended, s.closed = at(s.acked), at(s.ended), at(s.closed)
        merged.sessions.append(s)
    for instance, views in t.released_views.items():
        merged.released_views[instance] = [(new[q], v) for q, v in views]
    for instance, sums in t.aggregates.items():
        merged.aggregates[instance] = [(new[q], v) for q, v in sums]
    for instance, (seq, released, decided, alone) in verdicts.items():
        merged.verdicts[instance] = Verdict(new[seq], released, decided, alone)
    for instance, seq in t.left.items():
        merged.left[instance] = new[seq]


def findings(n: int, figures: list[Figures], merged: Truth) -> list[str]:
    """The checker's findings on the merged record, and what each part saw go wrong."""
    return [v for f in figures for v in f.violations] + violations(n, merged)


def row(n: int, k: int, *, parts: int, cpu_scale: float) -> Row:
    """``tests.sim.scale.run``'s fault-free sparse row, run in ``parts`` processes: each
    part's figures merged (sums, maxima), the checker's findings on the merged record."""
    began = time.monotonic()
    figures, merged = simulate(n, parts=parts, degree=k, cpu=True, cpu_scale=cpu_scale)
    found = findings(n, figures, merged)
    queries = [0] * n
    for f in figures:
        for index, count in f.queries.items():
            queries[index] += count
    return Row(
        n=n,
        mode="sparse",
        k=k,
        faults=False,
        released=sum(f.released for f in figures),
        unsafe=len(found),
        last_start_to_release=round(
            max(f.last_release for f in figures) - max(f.last_start for f in figures), 3
        ),
        dns_mean=round(sum(queries) / n, 2),
        dns_max=max(queries),
        dns_total=sum(queries),
        sessions_max=max(f.sessions_max for f in figures),
        messages_max=max(f.messages_max for f in figures),
        root_cpu=round(sum(f.root_cpu or 0.0 for f in figures), 3),
        cpu_total=round(sum(f.cpu_total for f in figures), 2),
        real=round(time.monotonic() - began, 1),
        cpu_factor=cpu_scale,
        findings=tuple(found[:SHOWN]),
    )


def compare(n: int) -> tuple[str, str]:
    """One process against two, without the CPU model (a function of the seed alone): the
    figures of each, one line each."""
    from tests.sim import digest  # the one-process run of the same Job

    began = time.monotonic()
    one = digest.simulate(n)
    nodes = list(one.current().values())
    queries = [m.queries for m in one.nodes]
    line = (
        f"{n:>7} 1 proc  released {sum(isinstance(x.verdict, Released) for x in nodes)} "
        f"findings {len(one.violations + violations(n, one.truth))} "
        f"dns {sum(queries) / n:.2f}/{max(queries)}/{sum(queries)} "
        f"sessions {max(m.sessions for m in one.nodes)} "
        f"messages {max(m.messages for m in one.nodes)} "
        f"last release {max(x.verdict_at or one.now for x in nodes):.4f} "
        f"real {time.monotonic() - began:.1f} s"
    )
    del one, nodes
    began = time.monotonic()
    figures, merged = simulate(n, degree=sparse_degree(n))
    q = [count for f in figures for count in f.queries.values()]
    two = (
        f"{n:>7} 2 procs released {sum(f.released for f in figures)} "
        f"findings {len(findings(n, figures, merged))} "
        f"dns {sum(q) / n:.2f}/{max(q)}/{sum(q)} "
        f"sessions {max(f.sessions_max for f in figures)} "
        f"messages {max(f.messages_max for f in figures)} "
        f"last release {max(f.last_release for f in figures):.4f} "
        f"real {time.monotonic() - began:.1f} s"
    )
    return line, two


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m tests.sim.procs [--sizes 1000,3000]``: ``compare`` at each size."""
    parser = argparse.ArgumentParser(prog="python -m tests.sim.procs", description=__doc__)
    parser.add_argument("--sizes", default="1000,3000")
    args = parser.parse_args(argv)
    for n in [int(s) for s in args.sizes.split(",") if s]:
        for line in compare(n):
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
