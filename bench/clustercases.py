"""The cases that need the cluster in a box: release latency and DNS load, tool against tool.

Each Job runs on a fresh cluster (its own namespaces and unbound), so nothing carries over
between runs; every run is bounded in time, and what a bounded run reached is reported.
"""

from __future__ import annotations

import datetime
import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import ROOT
from bench.workloads import HOLD, MARK, job
from tests.harness.cluster import Cluster, ClusterOptions
from tests.harness.jobrun import Delays, JobRun
from tests.harness.pod import SUCCEEDED, Pod

__all__ = ["dns_load", "release_latency"]

Sample = dict[str, Any]
# time.time() - time.monotonic(): turns the agents' wall-clock log stamps into our clock
_WALL_TO_MONO = time.time() - time.monotonic()


@dataclass
class Ran:
    run: JobRun
    cluster: Cluster
    finished: bool  # the Job ended within the bound
    queries: int  # queries cluster DNS received while the Job ran


def _run_job(
    tool: str, n: int, work: Path, delays: Delays, bound: float, inspect: Any = None
) -> Sample:
    """Run ``tool``'s Job of ``n`` pods on a fresh cluster; ``inspect(ran)`` makes the sample
    while the pods' files still exist."""
    cluster = Cluster(work / f"{tool}-{n}", ClusterOptions(probe_period=None))
    cluster.start()
    try:
        before = cluster.dns_queries()
        [run] = cluster.apply(job(tool, n, timeout=bound), start_delays=delays)
        try:
            cluster.wait_job(run, bound + HOLD)
            finished = True
        except TimeoutError:
            finished = False
        ran = Ran(run, cluster, finished, cluster.dns_queries() - before)
        sample = dict(inspect(ran))
        if not sample.get("ok"):
            sample["logs"] = str(_keep_logs(cluster, run, f"{tool}-{n}"))
        return sample
    finally:
        cluster.stop()


def _keep_logs(cluster: Cluster, run: JobRun, what: str) -> Path:
    """A failed run's pod logs, kept under bench/results/failed/ for diagnosis."""
    stamp = time.strftime("%H%M%S")
    keep = ROOT / "bench" / "results" / "failed" / f"{what}-{stamp}"
    keep.mkdir(parents=True, exist_ok=True)
    for pod in run.all_pods():
        text = cluster.logs(pod)
        when = f"started {pod.started_at} ready {pod.ready_at} ended {pod.ended_at} {pod.phase}"
        (keep / f"{pod.index:04d}-{pod.name}.log").write_text(f"# {when}\n{text}")
    return keep


def _listening_at(cluster: Cluster, pod: Pod) -> float | None:
    """When the pod's agent logged its start (it listens before it logs), on our clock."""
    for line in cluster.logs(pod).splitlines():
        if '"event": "start"' in line:
            ts = json.loads(line)["ts"]
            wall = datetime.datetime.fromisoformat(ts).timestamp()
            return wall - _WALL_TO_MONO
    return None


def _succeeded(run: JobRun) -> list[Pod]:
    return [p for p in run.all_pods() if p.phase == SUCCEEDED]


def _released_at(cluster: Cluster, pod: Pod) -> float | None:
    """When the pod's wait ended and its workload began (the line it logs then), on our clock."""
    for line in cluster.logs(pod).splitlines():
        if line.startswith(MARK):
            return float(line.split()[1]) - _WALL_TO_MONO
    return None


def release_latency(tool: str, n: int, *, late: float, bound: float) -> Sample:
    """Every pod but the last starts at once; the last starts ``late`` seconds after, when the
    others are all waiting. Latency: the last pod becoming reachable (peer-agent: its agent
    listening; the baselines: its container started, which is when ping and DNS answer for it)
    to the last pod's workload starting, i.e. the last tool leaving."""

    def inspect(ran: Ran) -> Sample:
        run, last = ran.run, ran.run.pod(n - 1)
        done = _succeeded(run)
        sample: Sample = {"ok": ran.finished and len(done) == n, "reached": len(done), "n": n}
        if last.ready_at is None:
            sample["note"] = "the late pod never started"
            return sample
        reachable = last.ready_at
        if tool == "peer-agent":
            reachable = _listening_at(ran.cluster, last) or reachable
            sample["cold_start_s"] = round(reachable - last.ready_at, 3)
        ends = [_released_at(ran.cluster, p) for p in run.all_pods()]
        released = [t for t in ends if t is not None]
        sample["reached"] = len(released)
        if sample["ok"] and len(released) == n:
            sample["latency_s"] = round(max(released) - reachable, 3)
        else:
            sample["note"] = f"{len(done)}/{n} pods done within {bound:g}s"
        return sample

    with tempfile.TemporaryDirectory(prefix="peer-agent-bench-") as work:
        return _run_job(tool, n, Path(work), {n - 1: late}, bound, inspect)


def dns_load(tool: str, n: int, *, spread: float, bound: float) -> Sample:
    """Pods start evenly over ``spread`` seconds; queries cluster DNS received while the Job ran,
    per pod per second that pod spent waiting (its container start to its workload's start)."""

    def inspect(ran: Ran) -> Sample:
        run = ran.run
        done = _succeeded(run)
        now = time.monotonic()
        waited = 0.0
        for pod in run.all_pods():
            if pod.ready_at is not None:
                end = _released_at(ran.cluster, pod) or pod.ended_at or now
                waited += max(0.0, end - pod.ready_at)
        sample: Sample = {
            "ok": ran.finished and len(done) == n,
            "reached": len(done),
            "n": n,
            "queries": ran.queries,
            "waited_s": round(waited, 1),
        }
        if waited > 0:
            sample["qps_per_pod"] = round(ran.queries / waited, 2)
        if not sample["ok"]:
            sample["note"] = f"{len(done)}/{n} pods done within {bound:g}s"
        return sample

    with tempfile.TemporaryDirectory(prefix="peer-agent-bench-") as work:
        return _run_job(tool, n, Path(work), lambda i: spread * i / n, bound, inspect)
