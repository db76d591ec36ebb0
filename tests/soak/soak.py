"""The soak loop: plan, run and judge barriers back to back; summary table and JSON.

Each barrier gets a cluster of its own (a fresh unbound and fresh namespaces take ~0.2 s), so the
DNS options can differ per barrier and no state leaks from one barrier into the next.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tests.harness import leftovers, workload
from tests.harness.cluster import Cluster
from tests.harness.options import ClusterOptions
from tests.harness.workload import Workload
from tests.soak.barrier import BarrierRun, run_barrier
from tests.soak.check import Verdict, judge, summarize
from tests.soak.plan import make_plan

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "k8s" / "examples" / "seed"
FALLBACK = REPO / "tests" / "harness" / "workloads" / "seed-peer-agent.yaml"
DEFAULT_BOUND = 45.0  # s per barrier; a healthy one takes 2-8 s here
KEEP_FAILED = 20  # failed barriers whose logs are kept for a report, per kind of failure


@dataclass
class SoakResult:
    summary: dict[str, Any]
    runs: list[BarrierRun]
    verdicts: list[Verdict]

    def failures(self) -> list[str]:
        out = []
        for run, v in zip(self.runs, self.verdicts, strict=True):
            if not v.ok:
                what = [*v.problems, *v.early, *v.wrong]
                out.append(f"barrier {run.plan.number}: " + " | ".join(what))
        return out


def base_workload() -> Workload:
    """The shipped seed example, as `kubectl apply -k` would create it."""
    return workload.load(EXAMPLE if EXAMPLE.is_dir() else FALLBACK)


def negative_cache_works(workdir: Path) -> bool:
    """Whether the harness's caching DNS front (ClusterOptions.negative_ttl) answers on the
    cluster DNS address. It did not when the soak was written (the front bound the backend's
    port instead of 53), and every barrier would then be a DNS outage, not negative caching."""
    leftovers.register_path(workdir)
    try:
        with Cluster(workdir, ClusterOptions(negative_ttl=1)) as cluster:
            zone = cluster.options.zone
            return cluster.resolve(f"{zone}.", "SOA").rcode == "NOERROR"
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        leftovers.unregister_path(workdir)


def run_soak(
    barriers: int,
    seed: int,
    workdir: Path,
    *,
    bound: float = DEFAULT_BOUND,
    only: list[int] | None = None,
    keep_dir: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> SoakResult:
    base = base_workload()
    negative_cache = negative_cache_works(workdir / "probe")
    if not negative_cache and progress is not None:
        progress("soak: the harness's negative-caching DNS front does not answer; skipped")
    numbers = only if only is not None else list(range(barriers))
    runs: list[BarrierRun] = []
    verdicts: list[Verdict] = []
    kept = {"hang": 0, "early": 0, "wrong": 0}  # a flood of one kind must not hide another
    started = time.monotonic()
    for number in numbers:
        plan = make_plan(number, seed)
        if not negative_cache:
            plan = replace(plan, negative_ttl=0, record_ttl=0)
        barrier_dir = workdir / f"barrier-{number:04d}"
        leftovers.register_path(barrier_dir)
        try:
            run = run_barrier(plan, base, barrier_dir, bound)
        finally:
            shutil.rmtree(barrier_dir, ignore_errors=True)
            leftovers.unregister_path(barrier_dir)
        verdict = judge(run)
        runs.append(run)
        verdicts.append(verdict)
        kind = "hang" if verdict.hang else "early" if verdict.early else "wrong"
        if not verdict.ok and keep_dir is not None and kept[kind] < KEEP_FAILED:
            keep(run, verdict, keep_dir / f"barrier-{number:04d}")
            kept[kind] += 1
        if progress is not None:
            progress(_line(run, verdict, len(runs), len(numbers)))
    summary = summarize(runs, verdicts, time.monotonic() - started)
    summary["negative_cache_available"] = negative_cache
    return SoakResult(summary, runs, verdicts)


def _line(run: BarrierRun, v: Verdict, done: int, total: int) -> str:
    p = run.plan
    state = "ok" if v.ok else "FAIL " + "; ".join([*v.problems, *v.early, *v.wrong])[:300]
    return (
        f"[{done}/{total}] barrier {p.number}: {p.peers} pods, {run.restarts_done} restarts, "
        f"dns delay {p.publish_delay}s negttl {p.negative_ttl}s withdrawn "
        f"{run.withdrawals_done}, {run.elapsed:.1f}s: {state}"
    )


def keep(run: BarrierRun, verdict: Verdict, where: Path) -> None:
    """The plan, verdict and every pod's log of a failed barrier, for a bug report."""
    where.mkdir(parents=True, exist_ok=True)
    doc = {
        "plan": run.plan.as_json(),
        "status": run.status,
        "elapsed": run.elapsed,
        "notes": run.notes,
        "verdict": {
            "hang": verdict.hang,
            "early": verdict.early,
            "wrong": verdict.wrong,
            "problems": verdict.problems,
        },
        "pods": [{k: v for k, v in vars(i).items() if k != "log"} for i in run.instances],
    }
    (where / "barrier.json").write_text(json.dumps(doc, indent=2) + "\n")
    for inst in run.instances:
        (where / f"{inst.name}.log").write_text(inst.log)


ROWS = [
    ("barriers", "barriers"),
    ("pods (sum of N)", "pods"),
    ("pod instances (with replacements)", "pod_instances"),
    ("restarts (agent killed, pod replaced)", "restarts"),
    ("restarts skipped (holdout started)", "restarts_skipped"),
    ("DNS faults injected", "dns_faults"),
    ("  barriers with publication delay", "dns_publish_delay_barriers"),
    ("  barriers with negative caching", "dns_negative_cache_barriers"),
    ("  (negative caching available in the harness)", "negative_cache_available"),
    ("  records withdrawn and re-added", "dns_withdrawals"),
    ("barriers with agents up late (bound extended)", "barriers_starved"),
    ("hangs", "hangs"),
    ("early releases", "early_releases"),
    ("wrong releases", "wrong_releases"),
    ("  of which: peers counted at a replaced pod", "stale_peer_counts"),
    ("barrier time median (s)", "barrier_time_median_s"),
    ("barrier time max (s)", "barrier_time_max_s"),
    ("release after last start, median (s)", "release_latency_median_s"),
    ("release after last start, max (s)", "release_latency_max_s"),
    ("wall time (s)", "wall_s"),
]


def table(summary: dict[str, Any]) -> str:
    width = max(len(label) for label, _ in ROWS)
    return "\n".join(f"{label.ljust(width)}  {summary.get(key)}" for label, key in ROWS)


def write_json(result: SoakResult, path: Path, config: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "config": config,
        "summary": result.summary,
        "failures": result.failures(),
        "barriers": [
            {
                "number": r.plan.number,
                "peers": r.plan.peers,
                "restarts": r.restarts_done,
                "dns_faults": r.plan.dns_faults,
                "status": r.status,
                "elapsed": round(r.elapsed, 3),
                "ok": v.ok,
                "notes": r.notes,
            }
            for r, v in zip(result.runs, result.verdicts, strict=True)
        ],
    }
    path.write_text(json.dumps(doc, indent=2) + "\n")
