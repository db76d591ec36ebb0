"""The agent's modes at scale in the cluster in a box: the shipped examples with N pods.

- ``sidecar``: ``k8s/examples/sidecar`` (a native sidecar; its startupProbe on ``/readyz`` holds
  the workload container back until the barrier passed; the sidecar is stopped once the
  workload ends);
- ``exit``: ``k8s/examples/seed`` with ``run --exit-barrier -- true`` (the start barrier, the
  workload, then the exit barrier, both on the agent's one port);
- ``wait``: ``k8s/examples/seed`` as shipped, for comparison.

Every pod starts at once (``completions = parallelism = N``), JSON logs. A run passes when the
Job completes, every pod's agent logged its release (``exit``: the exit barrier's too), no
member opened its session to the coordinator twice (a cut session is redialled, and the release
line counts the sessions opened) and no agent caught a bug of its own. Each pod's release is
read off its log (the agent's wall-clock stamp, put on ``time.monotonic()``).
"""

from __future__ import annotations

import contextlib
import datetime
import json
import shutil
import time
from pathlib import Path
from typing import Any

from tests.harness import workload
from tests.harness.cluster import Cluster
from tests.harness.jobrun import JobRun
from tests.harness.pod import SUCCEEDED, Pod
from tests.harness.variants import with_args, with_completions, with_env

__all__ = ["MODES", "describe", "run_mode"]

MODES = ("sidecar", "exit", "wait")
EXAMPLES = Path(__file__).resolve().parents[2] / "k8s" / "examples"
#: time.time() - time.monotonic(): puts the agents' wall-clock stamps on our clock
_WALL_TO_MONO = time.time() - time.monotonic()


def job_for(mode: str, n: int, timeout: float) -> workload.Workload:
    """The example for ``mode`` with ``n`` pods, JSON logs and the agents' ``timeout``."""
    example = workload.load(EXAMPLES / ("sidecar" if mode == "sidecar" else "seed"))
    if mode == "exit":
        tail = ("--exit-timeout", f"{timeout:g}s", "--", "true")
        example = with_args(example, "peer-agent", ("run", "--exit-barrier", *tail))
    example = with_env(example, "PEER_AGENT_TIMEOUT", f"{timeout:g}s")
    return with_env(with_completions(example, n), "PEER_AGENT_LOG_FORMAT", "json")


def _records(cluster: Cluster, pod: Pod) -> list[dict[str, Any]]:
    records = []
    for line in cluster.logs(pod, "peer-agent").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            record = {"raw": line}
        records.append(record if isinstance(record, dict) else {"raw": line})
    return records


def _stamp(record: dict[str, Any]) -> float:
    return datetime.datetime.fromisoformat(record["ts"]).timestamp() - _WALL_TO_MONO


def _pod_figures(mode: str, records: list[dict[str, Any]]) -> dict[str, Any]:
    """When this pod's agent passed (its last release line: the exit barrier's in ``exit``),
    whether a session was redialled, and bugs caught."""
    releases = [r for r in records if r.get("event") == "released"]
    want = 2 if mode == "exit" else 1
    return {
        "passed_at": _stamp(releases[-1]) if len(releases) >= want else None,
        "redialled": any(r.get("sessions", 0) > 1 for r in releases),
        "bugs": sum(
            r.get("event") in ("bug", "bugs") or "Traceback" in r.get("raw", "") for r in records
        ),
    }


def _inspect(mode: str, cluster: Cluster, run: JobRun, applied: float) -> dict[str, Any]:
    pods = [run.pod(i) for i in range(run.job.completions)]
    per_pod = [_pod_figures(mode, _records(cluster, p)) for p in pods]
    passed = [f["passed_at"] for f in per_pod if f["passed_at"] is not None]
    starts = [p.started_at for p in pods if p.started_at is not None]
    cpu = [p.cpu_seconds["peer-agent"] for p in pods if "peer-agent" in p.cpu_seconds]
    figures: dict[str, Any] = {
        "status": run.status,
        "succeeded": sum(p.phase == SUCCEEDED for p in pods),
        "passed": len(passed),
        "redialled": sum(f["redialled"] for f in per_pod[1:]),
        "bugs": sum(f["bugs"] for f in per_pod),
        "retried_pods": len(run.all_pods()) - len(pods),
    }
    if starts:
        figures["last_sandbox_s"] = round(max(starts) - applied, 2)
    if passed and starts:
        figures["last_sandbox_to_last_pass_s"] = round(max(passed) - max(starts), 2)
        figures["pass_spread_s"] = round(max(passed) - min(passed), 2)
    if cpu:  # the agent's own container (a sidecar's CPU is not recorded by the harness)
        figures["cpu_per_pod_s"] = round(sum(cpu) / len(cpu), 3)
    return figures


def keep_logs(run: JobRun, keep: Path) -> None:
    """Every pod's container logs (each instance's, a retried pod's too) copied under ``keep``,
    one directory a pod: what a run that failed is diagnosed from once its cluster is gone."""
    for pod in run.all_pods():
        shutil.copytree(pod.spec.logdir, keep / pod.name, dirs_exist_ok=True)


def run_mode(
    mode: str, n: int, work: Path, bound: float = 900.0, keep: Path | None = None
) -> dict[str, Any]:
    """One Job of ``mode`` with ``n`` pods on a fresh cluster, bounded by ``bound`` s; its
    figures (``ok``: it passed, see the module's docstring). ``keep``: where the pods' logs
    are kept (``keep_logs``); by default they go with the cluster."""
    cluster = Cluster(work)
    cluster.start()
    teardown = 0.0
    try:
        applied = time.monotonic()
        [run] = cluster.apply(job_for(mode, n, timeout=bound))
        with contextlib.suppress(TimeoutError):  # what a bounded run reached is reported
            cluster.wait_job(run, bound)
        done = time.monotonic() - applied
        figures = _inspect(mode, cluster, run, applied) | {"mode": mode, "n": n}
        figures["apply_to_end_s"] = round(done, 2)
        if keep is not None:
            keep_logs(run, keep)
    finally:
        stopping = time.monotonic()
        cluster.stop()
        teardown = time.monotonic() - stopping
    figures["teardown_s"] = round(teardown, 2)
    figures["ok"] = (
        figures["status"] == "Complete"
        and figures["passed"] == n
        and figures["redialled"] == 0
        and figures["bugs"] == 0
    )
    return figures


def describe(figures: dict[str, Any]) -> str:
    """One line: the outcome, then every figure."""
    verdict = "ok" if figures["ok"] else "FAILED"
    rest = ", ".join(f"{k} {v}" for k, v in figures.items() if k not in ("ok", "mode", "n"))
    return f"{verdict}: {rest}"
