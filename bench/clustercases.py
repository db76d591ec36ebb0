"""The cases that need the cluster in a box: release latency and DNS load, tool against tool.

Each Job runs on a fresh cluster (its own namespaces and unbound), so nothing carries over
between runs; every run is bounded in time, and what a bounded run reached is reported.
"""

from __future__ import annotations

import datetime
import json
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import ROOT
from bench.workloads import HOLD, MARK, job
from tests.harness.cluster import Cluster
from tests.harness.jobrun import Delays, JobRun
from tests.harness.options import ClusterOptions
from tests.harness.pod import SUCCEEDED, Pod

__all__ = ["barrier_cpu", "dns_load", "release_latency"]

Sample = dict[str, Any]
# time.time() - time.monotonic(): turns the agents' wall-clock log stamps into our clock
_WALL_TO_MONO = time.time() - time.monotonic()


@dataclass
class Ran:
    run: JobRun
    cluster: Cluster
    finished: bool  # the Job ended within the bound
    queries: int  # queries cluster DNS received while the Job ran


@dataclass(frozen=True)
class Setup:
    """How every pod runs: its CPU limit (None: none) and what `image: peer-agent` runs (the
    installed wheel, built by bench.coldstart; (): this checkout)."""

    cpu: str | None = None
    agent_command: tuple[str, ...] = ()
    #: peer-agent's --driver (PEER_AGENT_DRIVER): auto, anyio or selectors
    driver: str = "auto"


def _run_job(
    tool: str,
    n: int,
    work: Path,
    delays: Delays,
    bound: float,
    inspect: Any = None,
    started: Callable[[JobRun], None] | None = None,
    start_within: float = 0.0,
    setup: Setup = Setup(),
) -> Sample:
    """Run ``tool``'s Job of ``n`` pods on a fresh cluster; ``started(run)`` runs once the pods
    are applied (for at most ``start_within`` s), and the Job then has ``bound`` s to end;
    ``inspect(ran)`` makes the sample while the pods' files still exist."""
    options = ClusterOptions(probe_period=None, agent_command=setup.agent_command)
    cluster = Cluster(work / f"{tool}-{n}", options)
    cluster.start()
    try:
        before = cluster.dns_queries()
        timeout = start_within + bound
        workload = job(tool, n, timeout=timeout, cpu=setup.cpu, driver=setup.driver)
        [run] = cluster.apply(workload, start_delays=delays)
        if started is not None:
            started(run)
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


@dataclass(frozen=True)
class _Waiting:
    """How an early pod's log says it is through with the n-1 early pods and waits for the
    last one only: each line maps to a thing seen (or None), and all of ``wanted`` must be."""

    seen: Callable[[str], Any]
    wanted: frozenset[Any]


def _waiting_for_the_last(tool: str, n: int) -> _Waiting | None:
    """peer-agent: it has reached the n-1 early peers (itself included). The loops go in index
    order: they are at the last pod once they fail on it. None: the tool says nothing of the
    kind (wait-for-it runs quiet), and the clock alone decides."""
    if tool == "peer-agent":

        def reached(line: str) -> Any:
            return json.loads(line).get("peer") if '"event": "reached"' in line else None

        return _Waiting(reached, frozenset(range(n - 1)))
    pattern = {
        "seed": rf"Failed to ping pod example-job-{n - 1}\.headless-svc, .*",
        "nslookup": rf"waiting for example-job-{n - 1}",
    }.get(tool)
    if pattern is None:
        return None
    line_says = re.compile(pattern).fullmatch
    return _Waiting(lambda line: bool(line_says(line.strip())) or None, frozenset({True}))


def _await_waiting(run: JobRun, waiting: _Waiting, n: int, timeout: float) -> bool:
    """Until every early pod's log says it waits for the last pod only (False: timed out).
    Each log is read on from where the last look stopped: 255 logs of 100 KB, read whole every
    0.2 s, would load the very box the case measures."""
    container = run.job.template.containers[0].name
    todo = {i: set(waiting.wanted) for i in range(n - 1)}
    offsets = dict.fromkeys(todo, 0)
    partial = dict.fromkeys(todo, "")  # a line not written to its end yet
    deadline = time.monotonic() + timeout
    while todo and time.monotonic() < deadline:
        for i in list(todo):
            path = run.pod(i).log_path(container)
            if not path.exists():
                continue
            with path.open(errors="replace") as log:
                log.seek(offsets[i])
                text = partial[i] + log.read()
                offsets[i] = log.tell()
            *lines, partial[i] = text.split("\n")
            todo[i] -= {waiting.seen(line) for line in lines}
            if not todo[i]:
                del todo[i]
        if todo:
            time.sleep(0.2)  # logs are files: nothing wakes us when they grow
    return not todo


def release_latency(
    tool: str, n: int, *, late: float, bound: float, settle: float, setup: Setup = Setup()
) -> Sample:
    """Every pod but the last starts at once; the last starts when the others are all waiting
    for it, and not before ``late`` s. Waiting is what each tool's log says (peer-agent: it has
    reached the n-1 others; the loops: they are at the last index; see _waiting_for_the_last),
    within ``settle`` s; wait-for-it, which says nothing, is taken to wait after ``late`` s.
    (On two cores 255 agents took 50 s to start and reach each other: a last pod started at a
    fixed time met a box still busy with that.) The Job then has ``bound`` s. Latency: the last
    pod's container process launched (the harness's Popen returned: the tool's `exec` is
    under way) to the last pod's workload running (its first command, `date`, logs a stamp),
    i.e. the last tool leaving, its cold start included. ``cpu_per_pod_s``: the pods' mean CPU
    (user + system of each container's process tree, from wait4) over the whole run."""
    waiting = _waiting_for_the_last(tool, n)
    settled: list[bool] = []

    def start_the_last(run: JobRun) -> None:
        applied = time.monotonic()
        if waiting is not None:
            settled.append(_await_waiting(run, waiting, n, settle))
        time.sleep(max(0.0, applied + late - time.monotonic()))
        run.pod(n - 1).start_now()

    def inspect(ran: Ran) -> Sample:
        run, last = ran.run, ran.run.pod(n - 1)
        done = _succeeded(run)
        sample: Sample = {"ok": ran.finished and len(done) == n, "reached": len(done), "n": n}
        if settled:
            sample["others_waiting"] = settled[0]
        if last.ready_at is None:
            sample["note"] = "the late pod never started"
            return sample
        launched = last.ready_at
        if tool == "peer-agent" and (listening := _listening_at(ran.cluster, last)):
            sample["cold_start_s"] = round(listening - launched, 3)
        ends = [_released_at(ran.cluster, p) for p in run.all_pods()]
        released = [t for t in ends if t is not None]
        sample["reached"] = len(released)
        sample |= _cpu(run)
        if sample["ok"] and len(released) == n:
            sample["latency_s"] = round(max(released) - launched, 3)
        else:
            sample["note"] = f"{len(done)}/{n} pods done within {bound:g}s"
        return sample

    with tempfile.TemporaryDirectory(prefix="peer-agent-bench-") as work:
        # The clock's fallback: should the watch above fail, the pod starts on its own.
        delays = {n - 1: late + settle + 1.0}
        return _run_job(
            tool,
            n,
            Path(work),
            delays,
            bound,
            inspect,
            start_the_last,
            start_within=late + settle,
            setup=setup,
        )


def _cpu(run: JobRun) -> Sample:
    """The pods' CPU: each container's user + system time over its life (the tool, then the
    workload's `echo`, `date` and `sleep`, about 2 ms), mean and max over the pods."""
    cpu = [s for p in run.all_pods() for s in p.cpu_seconds.values()]
    if len(cpu) < len(run.all_pods()):
        return {}
    return {"cpu_per_pod_s": round(sum(cpu) / len(cpu), 4), "cpu_max_pod_s": round(max(cpu), 4)}


def barrier_cpu(tool: str, n: int, *, bound: float, setup: Setup = Setup()) -> Sample:
    """All ``n`` pods start at once and pass the barrier; what each pod's container burnt, in
    CPU (see _cpu), from its launch to its end: what the barrier costs a pod."""

    def inspect(ran: Ran) -> Sample:
        done = _succeeded(ran.run)
        sample: Sample = {"ok": ran.finished and len(done) == n, "reached": len(done), "n": n}
        sample |= _cpu(ran.run)
        if "cpu_per_pod_s" not in sample:
            sample["ok"] = False
        if not sample["ok"]:
            sample["note"] = f"{len(done)}/{n} pods done within {bound:g}s"
        return sample

    with tempfile.TemporaryDirectory(prefix="peer-agent-bench-") as work:
        return _run_job(tool, n, Path(work), {}, bound, inspect, setup=setup)


def dns_load(tool: str, n: int, *, spread: float, bound: float, setup: Setup = Setup()) -> Sample:
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
        return _run_job(tool, n, Path(work), lambda i: spread * i / n, bound, inspect, setup=setup)
