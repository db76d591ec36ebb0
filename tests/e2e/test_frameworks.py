"""Each framework's example, as its controller would run it (tests/harness/frameworks.py), through
the barrier with one late pod: the others wait for it, nobody starts early, everybody gets the
names its launcher reads.

The late pod is held until every other agent has started (an event, not a sleep); the printed
``release`` is from letting it start to the last pod passing (``-s`` shows it).
"""

from __future__ import annotations

import re
import time
from dataclasses import replace
from pathlib import Path

import pytest

from tests.harness import workload
from tests.harness.cluster import Cluster
from tests.harness.fixtures import ClusterFactory
from tests.harness.jobrun import JobRun
from tests.harness.pod import Pod
from tests.harness.realworkloads import collectives, torch_image_files

EXAMPLES = Path(__file__).resolve().parents[2] / "k8s" / "examples"
ZONE = "default.svc.cluster.local"
HOLD = 600.0  # the late pod's start delay: ended by start_now, never by the clock


def _apply_with_late(
    cluster: Cluster, example: str, late_job: str, index: int, edit: tuple[str, str] = ("", "")
) -> tuple[list[JobRun], Pod]:
    """Apply the example (its text with ``edit`` made), one Job's pod ``index`` held back."""
    wl = workload.parse((EXAMPLES / example).read_text().replace(*edit))
    on_time = replace(wl, jobs=tuple(j for j in wl.jobs if j.name != late_job))
    late = replace(wl, jobs=tuple(j for j in wl.jobs if j.name == late_job))
    runs = cluster.apply(on_time) + cluster.apply(late, start_delays={index: HOLD})
    return runs, runs[-1].pod(index)


def _pods(runs: list[JobRun]) -> list[Pod]:
    return [run.pod(i) for run in runs for i in range(run.job.completions)]


def _hold_until_all_wait(
    cluster: Cluster, pods: list[Pod], late: Pod, topology: str, container: str = "peer-agent"
) -> float:
    """Every other agent is up and waiting; then the late pod may start."""
    for pod in pods:
        if pod is not late:
            cluster.wait_log(pod, rf"topology {topology}", 60, container=container)
    assert late.started_at is None and all(container not in p.exit_codes for p in pods)
    late.start_now()
    return time.monotonic()


def _complete(cluster: Cluster, runs: list[JobRun], released_from: float, name: str) -> None:
    for run in runs:
        status = cluster.wait_job(run, 90)
        logs = "\n".join(f"--- {p.name}\n{cluster.logs(p)}" for p in run.all_pods())
        assert status == "Complete", logs
    pods = _pods(runs)
    late_start = max(p.started_at or 0.0 for p in pods)
    for pod in pods:  # safety: no workload started before the late pod did
        assert pod.exit_codes.get("peer-agent") == 0, pod
        assert pod.ended_at is not None and pod.ended_at >= late_start, pod
    release = max(p.ended_at or 0.0 for p in pods) - released_from
    print(f"\n{name}: {len(pods)} pods, release {release:.2f} s after the late pod started")


def _workload_lines(cluster: Cluster, pods: list[Pod], container: str) -> list[str]:
    return [cluster.logs(p, container).strip().splitlines()[-1] for p in pods]


@pytest.mark.timeout(180)
def test_jobset_driver_and_workers_one_barrier(cluster: Cluster) -> None:
    runs, late = _apply_with_late(cluster, "jobset/jobset.yaml", "train-workers-1", 1)
    t0 = _hold_until_all_wait(cluster, _pods(runs), late, "jobset")
    _complete(cluster, runs, t0, "jobset")
    lines = _workload_lines(cluster, _pods(runs), "workload")
    master = f"train-driver-0-0.train.{ZONE}"
    assert sorted(lines) == [f"rank {r} of 5 starts; master {master}" for r in range(5)]


@pytest.mark.timeout(180)
def test_trainer_nodes_from_pet_variables(cluster: Cluster) -> None:
    runs, late = _apply_with_late(cluster, "trainer/trainjob.yaml", "mnist-node-0", 2)
    t0 = _hold_until_all_wait(cluster, _pods(runs), late, "trainer")
    _complete(cluster, runs, t0, "trainer")
    lines = _workload_lines(cluster, _pods(runs), "node")
    master = f"mnist-node-0-0.mnist.{ZONE}"
    assert lines == [f"node {r} of 3 starts; master {master}" for r in range(3)]


@pytest.mark.timeout(300)
def test_pytorchjob_torchrun_behind_peer_agent_with_a_late_worker(
    make_cluster: ClusterFactory,
) -> None:
    """k8s/examples/pytorchjob as shipped, as the Training Operator runs it: a pod and a
    Service of its own per replica (published once Ready), the operator's variables, its
    init-pytorch in the workers. Worker 1 is late: nobody's torchrun starts before it; then a
    gloo all-reduce on all three ranks, and every pod leaves through the exit barrier."""
    cluster = make_cluster(publish_delay=1.0, image_files=torch_image_files())
    runs, late = _apply_with_late(cluster, "pytorchjob/pytorchjob.yaml", "mnist-worker-1", 0)
    pods = _pods(runs)
    t0 = _hold_until_all_wait(cluster, pods, late, "training-operator", container="pytorch")
    statuses = [cluster.wait_job(run, 200) for run in runs]
    logs = "\n".join(f"--- {p.name}\n{cluster.logs(p, 'pytorch')}" for p in pods)
    assert statuses == ["Complete"] * 3, logs
    master = {"copy-peer-agent": 0, "pytorch": 0}
    worker = {**master, "init-pytorch": 0}  # the operator's, beside peer-agent
    assert [p.exit_codes for p in pods] == [master, worker, worker], logs
    done = [c for run in runs for c in collectives(cluster, run, "pytorch")]
    assert sorted((c.rank, c.world, c.total) for c in done) == [(r, 3, 6.0) for r in range(3)]
    assert all(c.at > (late.started_at or 0.0) for c in done), (done, late.started_at)
    start = cluster.logs(pods[1], "pytorch").splitlines()[0]
    assert "topology training-operator (PET_NNODES is set" in start, start
    assert "pod 1 of 3: peers mnist-master-0.default.svc.cluster.local …" in start, start
    release = max(p.ended_at or 0.0 for p in pods) - t0
    print(f"\npytorchjob: 3 pods, all left {release:.2f} s after the late worker started")


@pytest.mark.timeout(180)
def test_volcano_workers_from_the_task_host_file(cluster: Cluster) -> None:
    runs, late = _apply_with_late(cluster, "volcano/vcjob.yaml", "vj-worker", 2)
    t0 = _hold_until_all_wait(cluster, _pods(runs), late, "hostfile")
    _complete(cluster, runs, t0, "volcano")
    lines = _workload_lines(cluster, _pods(runs), "worker")
    hosts = ",".join(f"vj-worker-{i}.vj.{ZONE}" for i in range(3))
    assert lines == [f"rank {r} of 3 starts; hosts {hosts}" for r in range(3)]


@pytest.mark.timeout(180)
@pytest.mark.parametrize("policy", ["Shared", "UniquePerReplica"])
def test_lws_a_barrier_per_group(cluster: Cluster, policy: str) -> None:
    """Group 0 passes while group 1 still waits for its late worker: groups are separate, in
    one Service for all groups (Shared) or one per group (UniquePerReplica)."""
    edit = ("subdomainPolicy: Shared", f"subdomainPolicy: {policy}")
    runs, late = _apply_with_late(cluster, "lws/leaderworkerset.yaml", "vllm-1", 2, edit)
    group0, group1 = _pods(runs[:1]), _pods(runs[1:])

    def leader(g: int) -> str:
        service = "vllm" if policy == "Shared" else f"vllm-{g}"
        return re.escape(f"vllm-{g}.{service}.{ZONE}")

    for w, pod in enumerate(group0):
        cluster.wait_log(pod, f"worker {w} of 3 starts; leader {leader(0)}$", 60, "server")
    t0 = _hold_until_all_wait(cluster, group1, late, "lws")
    for w, pod in enumerate(group1):
        cluster.wait_log(pod, f"worker {w} of 3 starts; leader {leader(1)}$", 60, "server")
    release = time.monotonic() - t0
    assert all(p.exit_codes.get("peer-agent") == 0 for p in group0 + group1)
    print(f"\nlws {policy}: group of 3, release {release:.2f} s after its late pod started")


@pytest.mark.timeout(180)
def test_mpi_launcher_waits_for_every_workers_sshd(cluster: Cluster) -> None:
    """One-sided: workers run only sshd (a TCP listener on 22), the launcher waits for them."""
    runs, late = _apply_with_late(cluster, "mpi-operator/mpijob.yaml", "pi-worker", 1)
    launcher = next(r for r in runs if r.job.name == "pi-launcher").pod(0)
    cluster.wait_log(launcher, r"topology hostfile", 60, container="peer-agent")
    worker0 = runs[-1].pod(0)
    cluster.wait_for(lambda: worker0.ready, 60, "worker 0 to be Ready (and in DNS)")
    assert launcher.exit_codes == {}  # still waiting for worker 1
    late.start_now()
    t0 = time.monotonic()
    run = next(r for r in runs if r.job.name == "pi-launcher")
    assert cluster.wait_job(run, 60) == "Complete", cluster.logs(launcher)
    assert launcher.ended_at is not None
    print(f"\nmpi: launcher released {launcher.ended_at - t0:.2f} s after the late worker started")
    assert launcher.exit_codes == {"peer-agent": 0, "launcher": 0}
    assert launcher.ended_at >= (late.started_at or 0.0)
    assert "mpirun starts on 2 workers" in cluster.logs(launcher, "launcher")


@pytest.mark.timeout(120)
def test_mpi_launcher_times_out_naming_the_missing_worker(cluster: Cluster) -> None:
    """A worker that never starts: the launcher's wait ends with exit 3 and says who and why,
    so the MPIJob fails instead of mpirun hanging on ssh."""
    timeout = (
        'value: "tcp:22"',
        'value: "tcp:22"\n                - {name: PEER_AGENT_TIMEOUT, value: 2s}',
    )
    runs, _ = _apply_with_late(cluster, "mpi-operator/mpijob.yaml", "pi-worker", 1, timeout)
    launcher = next(r for r in runs if r.job.name == "pi-launcher")
    assert cluster.wait_job(launcher, 60) == "Failed"
    assert launcher.pod(0).exit_codes == {"peer-agent": 3}
    log = cluster.logs(launcher.pod(0), "peer-agent")
    assert f"pi-worker-1.pi.{ZONE}: NXDOMAIN" in log, log
