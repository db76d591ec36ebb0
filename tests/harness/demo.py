"""`make demo`: the seed task's example in three pods of the cluster in a box.

    python -m tests.harness.demo            # k8s/examples/seed: peer-agent as the entrypoint
    python -m tests.harness.demo --seed     # the seed's own bash ping loop stranded by its
                                            # early-exit race, then the same Job with peer-agent
    python -m tests.harness.demo --topology jobset|lws|trainer|mpi|volcano
                                            # k8s/examples/<framework>, its last pod 3 s late
    python -m tests.harness.demo --workload torchrun   # k8s/examples/torchrun: gloo all-reduce
    python -m tests.harness.demo --workload mpi        # k8s/examples/mpi-init: mpirun, mpi4py

A real workload's pod 2 is scheduled a few seconds late; the last line says when the first
collective completed after it started.

Prints, marked [box] (it is a simulation: demoprint.py), what kubectl would (apply, wait, get
pods) and every pod's log, and exits 0 when every pod Succeeded (--seed: when the Job behind
peer-agent completed; demorace.py). Needs root (network namespaces); everything it creates is
removed on exit.
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from tests.harness import leftovers, workload
from tests.harness.cluster import Cluster
from tests.harness.demoprint import LEGEND, applied, get_pods, logs, say
from tests.harness.demorace import show_race
from tests.harness.jobrun import JobRun
from tests.harness.options import ClusterOptions
from tests.harness.realworkloads import (
    MPI_EXAMPLE,
    TORCHRUN_EXAMPLE,
    collectives,
    mpi_image_files,
    torch_image_files,
)

REPO = Path(__file__).resolve().parents[2]
AGENT_EXAMPLE = REPO / "k8s" / "examples" / "seed"
FALLBACK_EXAMPLE = Path(__file__).parent / "workloads" / "seed-peer-agent.yaml"
JOB_TIMEOUT = 180.0
# framework -> (example, the Job whose last pod comes late, Jobs whose pods serve for ever)
FRAMEWORKS = {
    "jobset": ("jobset/jobset.yaml", "train-workers-1", ()),
    "lws": ("lws/leaderworkerset.yaml", "vllm-1", ("vllm-0", "vllm-1")),
    "trainer": ("trainer/trainjob.yaml", "mnist-node-0", ()),
    "mpi": ("mpi-operator/mpijob.yaml", "pi-worker", ("pi-worker",)),
    "volcano": ("volcano/vcjob.yaml", "vj-worker", ()),
}
# --workload: the example and the files of its image (see realworkloads.py).
WORKLOADS = {
    "torchrun": (TORCHRUN_EXAMPLE, torch_image_files),
    "mpi": (MPI_EXAMPLE, mpi_image_files),
}
LATE = 3.0  # one pod starts this late, to show the others wait for it


def _settled(run: JobRun, *, serving: bool) -> str:
    """Complete (every pod Succeeded), Failed, or for pods that serve for ever (an LWS server,
    an MPI worker's sshd) Serving: every pod Ready, its peer-agent init container (if any)
    passed."""
    if run.status in ("Complete", "Failed"):
        return run.status
    pods = [run.pod(i) for i in range(run.job.completions) if i in run.pods]
    passed = all(p.ready and p.exit_codes.get("peer-agent", 0) == 0 for p in pods)
    if serving and len(pods) == run.job.completions and passed:
        return "Serving"
    return ""


def _first_collective(cluster: Cluster, run: JobRun) -> str:
    late = run.pod(2).started_at
    names = [c.name for c in run.job.template.containers]
    done = [c for name in names for c in collectives(cluster, run, name)]
    if late is None or not done:
        return "no collective completed"
    first = min(c.at for c in done)
    ranks = ", ".join(f"rank {c.rank}: {c.total:g}" for c in sorted(done, key=lambda c: c.rank))
    return (
        f"all-reduce sums ({ranks}); the first completed {first - late:.1f}s after the late "
        "pod (index 2) started"
    )


def _apply(cluster: Cluster, wl: workload.Workload, args: argparse.Namespace) -> list[JobRun]:
    if args.topology:  # one Job's last pod comes late
        late = next(j for j in wl.jobs if j.name == FRAMEWORKS[args.topology][1])
        early = cluster.apply(replace(wl, jobs=tuple(j for j in wl.jobs if j != late)))
        return early + cluster.apply(
            replace(wl, jobs=(late,)), start_delays={late.completions - 1: LATE}
        )
    return cluster.apply(wl, start_delays={2: LATE} if args.workload else None)


def _wait(cluster: Cluster, run: JobRun, started: float, *, serving: bool) -> str:
    what = f"job/{run.job.name}"
    if serving:  # pods that serve for ever: the Job never completes, its pods turn Ready
        what = f"pods -l batch.kubernetes.io/job-name={run.job.name}"
    condition = "ready" if serving else "complete"
    say(f"kubectl wait --for=condition={condition} {what} --timeout={JOB_TIMEOUT:g}s")
    try:
        settled = functools.partial(_settled, run, serving=serving)
        status = cluster.wait_for(settled, JOB_TIMEOUT, what)
    except TimeoutError:
        status = "Running"
    took = time.monotonic() - started
    if status == "Serving":  # no kubectl condition says it: the box's own words
        say(f"job/{run.job.name}: every pod Ready and past its barrier after {took:.1f}s")
    else:
        say(f"job/{run.job.name} {status} after {took:.1f}s")
    return status


def _show(work: Path, source: Path, options: ClusterOptions, args: argparse.Namespace) -> bool:
    """Apply the example, wait for each of its Jobs, show its pods and logs."""
    shown = source.relative_to(REPO)
    wl = workload.load(source)
    serving = FRAMEWORKS[args.topology][2] if args.topology else ()
    ok = True
    with Cluster(work, options) as cluster:
        say(f"kubectl apply {'-k' if source.is_dir() else '-f'} {shown}")
        applied(workload.render(source), wl)
        started = time.monotonic()
        for run in _apply(cluster, wl, args):
            status = _wait(cluster, run, started, serving=run.job.name in serving)
            get_pods(run)
            logs(cluster, run)
            if args.workload:
                print(_first_collective(cluster, run))
            ok = ok and status in ("Complete", "Serving")
    if args.topology:
        print("every barrier passed" if ok else "NOT every barrier passed")
    else:
        print("all pods Succeeded" if ok else "NOT all pods Succeeded")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seed",
        action="store_true",
        help="the seed's own bash loop stranded by its early-exit race, then peer-agent",
    )
    parser.add_argument(
        "--publish-delay",
        type=float,
        default=2.0,
        help="seconds between a pod change and DNS showing it (EndpointSlice lag; default 2)",
    )
    parser.add_argument("--topology", choices=sorted(FRAMEWORKS), help="a framework's example")
    parser.add_argument(
        "--workload", choices=sorted(WORKLOADS), help="a real workload's example instead"
    )
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("demo: needs root (it builds pods out of network namespaces)", file=sys.stderr)
        return 2
    image_files: tuple[tuple[str, Path, str], ...] = ()
    if args.topology:
        source = REPO / "k8s" / "examples" / FRAMEWORKS[args.topology][0]
    elif args.workload:
        source, files = WORKLOADS[args.workload]
        image_files = files()
    else:
        # k8s/ is a kustomization: rendering it needs kubectl (make deps installs it).
        shipped = AGENT_EXAMPLE.is_dir() and shutil.which("kubectl") is not None
        source = AGENT_EXAMPLE if shipped else FALLBACK_EXAMPLE
    # Lags as a real cluster has them (see test_seed_baseline): names appear and vanish, and a
    # finished pod's address stops answering, a moment after the pod changes.
    options = ClusterOptions(
        publish_delay=args.publish_delay,
        sandbox_teardown_delay=args.publish_delay,
        image_files=image_files,
    )
    work = Path(tempfile.mkdtemp(prefix="peer-agent-demo-"))
    leftovers.register_path(work)
    print(LEGEND, flush=True)
    try:
        if args.seed:
            return show_race(work, options, source)
        return 0 if _show(work, source, options, args) else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)
        leftovers.unregister_path(work)


if __name__ == "__main__":
    sys.exit(main())
