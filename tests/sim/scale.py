"""``make scale``'s in-memory rows: the shipped cores of N pods in the in-memory cluster, with
each core call's CPU charged to its pod (tests/sim/clock.py), one row per run.

``python -m tests.sim.scale [--sizes 1000,10000] [--faults 1000,10000] [--degree K]
[--all 256] [--json FILE] [--plot PNG]``: each size fault-free in sparse mode (and
all-to-all for the sizes given to ``--all``), and with faults for the sizes given to
``--faults``: pods restarted, messages dropped, a partition along the graph that heals, a
lagging DNS replica. A row: N, mode, K, whether every pod was released, the checker's
findings (tests/sim/safety.py), last start → last release (simulated, CPU charged), DNS
queries per pod (mean, max) and in all, sessions and messages per pod (max), the root's CPU,
and the real time the run took. Exit 1 unless every row released with no finding.
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from agent.core.effects import Released
from agent.core.graph import ReachGraph, sparse_degree
from tests.sim.cluster import Cluster, Fate, Node
from tests.sim.compiled import compiled_core
from tests.sim.dns import View
from tests.sim.judge import unsafe

__all__ = ["Row", "add_faults", "main", "run"]

#: findings a row keeps to print
SHOWN = 10
#: faults end by then; a run stops once every pod is released, or at ``HORIZON``
FAULTS_END = 4.0
HORIZON = 120.0
#: a compiled core's CPU (``python -m tests.sim.compiled``) is charged times this: the
#: interpreted core's CPU over the compiled one's for the same calls (a run without the CPU
#: model makes the same calls either way), so a row's simulated times stay the shipped agent's.
#: Measured at 1,000 pods (``python -m tests.sim.digest --sizes 1000 --faults "" --cpu``, the
#: same digest both ways, three interleaved pairs on this shared machine; docs/benchmarks.md):
#: 5.51, 5.25, 5.83 s interpreted, 3.10, 4.12, 3.51 s compiled (agent/core and agent/protocol)
COMPILED_CPU_FACTOR = 1.54


@dataclass(frozen=True)
class Row:
    n: int
    mode: str  # "sparse" or "all"
    k: int  # a pod's assigned edges (degree)
    faults: bool
    released: int  # pods whose latest start instance was released
    unsafe: int  # the checker's findings
    last_start_to_release: float  # simulated seconds, CPU charged
    dns_mean: float
    dns_max: int
    dns_total: int
    sessions_max: int
    messages_max: int
    root_cpu: float  # seconds of CPU the root's pod was charged
    cpu_total: float  # seconds of CPU all cores were charged
    real: float  # seconds the run took on this machine
    #: each core call's measured CPU was charged times this (``COMPILED_CPU_FACTOR``, or 1)
    cpu_factor: float = 1.0
    #: the first ``SHOWN`` findings, printed under the row: a rerun at 100,000 takes half an hour
    findings: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.released == self.n and self.unsafe == 0

    def line(self) -> str:
        return (
            f"{self.n:>7} {self.mode:>6} {self.k:>5} {'faults' if self.faults else '-':>6} "
            f"{'yes' if self.released == self.n else f'{self.released}/{self.n}':>11} "
            f"{self.unsafe:>6} {self.last_start_to_release:>9.2f} "
            f"{self.dns_mean:>6.1f} {self.dns_max:>5} {self.dns_total:>9} "
            f"{self.sessions_max:>8} {self.messages_max:>8} {self.root_cpu:>8.2f} "
            f"{self.real:>8.1f}"
        )


HEADER = (
    f"{'N':>7} {'mode':>6} {'K':>5} {'faults':>6} {'released':>11} {'unsafe':>6} "
    f"{'start→rel':>9} {'dns/pod':>6} {'max':>5} {'dns all':>9} {'sessions':>8} "
    f"{'messages':>8} {'root cpu':>8} {'real s':>8}"
)


def add_faults(c: Cluster, graph: ReachGraph | None, rng: random.Random) -> None:
    """Restarts (1 % of the pods, at most 50), drops (1 in 500 session messages), a partition
    of the pods into two halves along every assigned edge (the coordinator's sessions kept)
    from 0.5 s to 3 s, and a DNS replica 2 s behind for a tenth of the pods; all over by
    ``FAULTS_END``."""
    n = c.peers
    for index in rng.sample(range(n), min(50, max(1, n // 100))):
        c.at(rng.uniform(0.1, 3.0), functools.partial(c.restart, index, gap=0.2))

    def drop(src: Node, dst: Node, message: object) -> Fate:
        if c.now < FAULTS_END and rng.random() < 1 / 500:
            return Fate.LOST
        return Fate.DELIVER

    c.on_send = drop
    half = n // 2
    cut = {
        (i, j)
        for i in range(1, n)
        for j in (graph.neighbours(i) if graph is not None else range(1, n))
        if j != 0 and (i < half) != (j < half)
    }
    c.at(0.5, functools.partial(c.blocked.update, cut))
    c.at(3.0, c.blocked.clear)
    c.views.update({i: View(lag=2.0) for i in rng.sample(range(n), n // 10)})


def run(
    n: int,
    *,
    sparse: bool = True,
    degree: int | None = None,
    faults: bool = False,
    procs: int = 1,
) -> Row:
    """One row; with ``procs`` > 1 (fault-free, sparse) the cluster is split over that many
    OS processes by tree groups (tests/sim/procs.py)."""
    if procs > 1 and sparse and not faults:
        from tests.sim import procs as split  # it builds on this module's Row

        return split.row(n, degree or sparse_degree(n), parts=procs, cpu_scale=cpu_factor())
    gc.collect()  # what an earlier run left (its cluster, unfrozen below): not this row's work
    began = time.monotonic()
    k = (degree or sparse_degree(n)) if sparse else n - 1
    c = Cluster(n, mode="wait", degree=k if sparse else None, seed=1, cpu_meter=time.thread_time_ns)
    # scaled by the (compiled) simulator, not by a wrapper around each reading (0.3 s of 8.6)
    c.cpu_scale = cpu_factor()
    if faults:
        add_faults(c, c.graph, random.Random(2))
    for index in range(n):
        c.at(0.0, functools.partial(c.start, index))
    gc.freeze()
    # The cluster's millions of long-lived objects are made as the pods start, inside the run:
    # each collection of the old generation walked them all, and the young ones scanned the
    # effects and events of every call, most about to be freed anyway. The run leaves almost
    # no cycles (a few hundred objects at 1,000 pods), so none is looked for until it ends.
    gc.disable()
    try:
        t, released = 0.0, 0
        while t < HORIZON:
            t += 1.0
            c.run_until(t)
            current = c.current()
            released = sum(isinstance(node.verdict, Released) for node in current.values())
            if released == n and (not faults or t >= FAULTS_END):
                break
    finally:
        # Kept from the collector until the row is read too: the first allocation after
        # enabling it walked the whole cluster (1.6 s of a 2,500-pod run, 4 %); unfrozen once
        # the row is read, for the next run's collection to free.
        gc.freeze()
        gc.enable()
    try:
        return _row(c, n, k, sparse, faults, released, began)
    finally:
        gc.unfreeze()


def cpu_factor() -> float:
    """What a core call's measured CPU is charged times: ``COMPILED_CPU_FACTOR`` when the core
    is compiled, else 1."""
    return COMPILED_CPU_FACTOR if compiled_core() else 1.0


def _row(
    c: Cluster, n: int, k: int, sparse: bool, faults: bool, released: int, began: float
) -> Row:
    nodes = list(c.current().values())
    findings = unsafe(c) + c.violations
    last_start = max(node.started_at for node in nodes)
    last_release = max((node.verdict_at or c.now) for node in nodes)
    by_index = [0] * n
    for m in c.nodes:
        by_index[m.me.index] += m.queries
    queries = by_index
    root = c.pods_of[0][-1]
    return Row(
        n=n,
        mode="sparse" if sparse else "all",
        k=k,
        faults=faults,
        released=released,
        unsafe=len(findings),
        last_start_to_release=round(last_release - last_start, 3),
        dns_mean=round(sum(queries) / n, 2),
        dns_max=max(queries),
        dns_total=sum(queries),
        sessions_max=max(m.sessions for m in c.nodes),
        messages_max=max(m.messages for m in c.nodes),
        root_cpu=round(root.cpu, 3),
        cpu_total=round(sum(p.cpu for p in c.pods), 2),
        real=round(time.monotonic() - began, 1),
        cpu_factor=cpu_factor(),
        findings=tuple(findings[:SHOWN]),
    )


def _sizes(text: str) -> list[int]:
    return [int(s) for s in text.split(",") if s]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.sim.scale", description=__doc__)
    # 100,000 is not a default yet: about 5.5 GB and half an hour of one core on this machine
    # (docs/benchmarks.md); ask for it with --sizes 100000
    parser.add_argument("--sizes", type=_sizes, default=[1000, 10000])
    parser.add_argument("--faults", type=_sizes, default=[1000, 10000])
    parser.add_argument("--all", type=_sizes, default=[256], help="also all-to-all at these")
    parser.add_argument("--degree", type=int, default=None)
    # one process cannot run 100,000 pods in 10 minutes: the fault-free sparse rows of N >=
    # --split-at run in --procs processes (tests/sim/procs.py); rows with faults in one
    parser.add_argument("--procs", type=int, default=2, help="processes for large rows")
    parser.add_argument("--split-at", type=int, default=10000, help="the least N split")
    parser.add_argument("--json", default=None, help="append each row to this file")
    parser.add_argument("--plot", default=None, help="plot the rows in --json to this PNG")
    args = parser.parse_args(argv)
    if args.plot:
        plot(args.json, args.plot)
        return 0
    plan = [(n, True, False) for n in args.sizes]
    plan += [(n, False, False) for n in args.all]
    plan += [(n, True, True) for n in args.faults]
    if compiled_core():
        # what the row's simulated times mean: the shipped agent runs the core interpreted
        print(f"each compiled core call's CPU is charged x{COMPILED_CPU_FACTOR}", flush=True)
    print(HEADER, flush=True)
    ok = True
    for n, sparse, faults in plan:
        procs = args.procs if n >= args.split_at else 1
        row = run(n, sparse=sparse, degree=args.degree, faults=faults, procs=procs)
        ok = ok and row.ok
        print(row.line(), flush=True)
        for finding in row.findings:
            print(f"    finding: {finding}", flush=True)
        if args.json:
            with open(args.json, "a", encoding="utf-8") as out:
                out.write(json.dumps(asdict(row)) + "\n")
    return 0 if ok else 1


def plot(rows_file: str, png: str) -> None:
    """Log-log against N of the fault-free sparse rows in ``rows_file``: real time and CPU of
    the run, the root's CPU, last start → last release, DNS queries per pod."""
    import matplotlib  # only to plot: not on the way of a run

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(rows_file, encoding="utf-8") as lines:
        rows = [json.loads(line) for line in lines]
    rows = sorted(
        (r for r in rows if r["mode"] == "sparse" and not r["faults"]), key=lambda r: r["n"]
    )
    n = [r["n"] for r in rows]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for key, label in (
        ("real", "real time of the run (s)"),
        ("cpu_total", "CPU charged to all cores (s)"),
        ("root_cpu", "the root's CPU (s)"),
        ("last_start_to_release", "last start → last release, simulated (s)"),
        ("dns_mean", "DNS queries per pod (mean)"),
    ):
        ax.plot(n, [max(r[key], 1e-3) for r in rows], marker="o", label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("pods (N), --reach sparse, fault-free")
    ax.set_title("The in-memory cluster of shipped cores (tests/sim/scale.py)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png, dpi=110)


if __name__ == "__main__":
    sys.exit(main())
