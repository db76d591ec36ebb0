"""The true barrier in the cluster in a box: what the seed's loop cannot do, peer-agent does."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.e2e.test_agent import assert_all_succeeded, assert_barrier_held, seed_example
from tests.harness import workload
from tests.harness.cluster import Cluster
from tests.harness.fixtures import ClusterFactory
from tests.harness.pod import RUNNING, SUCCEEDED
from tests.harness.variants import with_args, with_publish_not_ready

WORKLOADS = Path(__file__).parents[1] / "harness" / "workloads"
SEED = WORKLOADS / "seed.yaml"


@pytest.mark.timeout(180)
def test_early_exit_strands_the_seed_loop_but_not_peer_agent(make_cluster: ClusterFactory) -> None:
    """Same conditions (every name published from the sandbox on, pod 2's container starting
    3 s late), the seed's script in one cluster, peer-agent's example in another."""
    cluster = make_cluster()
    seed = with_publish_not_ready(workload.load(SEED), True)
    [run] = cluster.apply(seed, pull_delays={2: 3.0})
    pods = [run.pod(i) for i in range(3)]
    cluster.wait_for(lambda: any(p.phase == SUCCEEDED for p in pods), 20, "a pod to finish")
    time.sleep(4.0)  # a bounded look at "for ever": four more seconds of the loop's retries
    gone = [p.hostname for p in pods if p.phase == SUCCEEDED]
    stuck = [p for p in pods if p.phase == RUNNING]
    assert stuck and run.status == "Running"
    for pod in stuck:  # each keeps failing on a peer that has finished and is gone
        log = cluster.logs(pod)
        waiting_on = [n for n in gone if f"Successfully pinged pod: {n}." not in log]
        last = log.splitlines()[-1]
        assert any(f"Failed to ping pod {n}.headless-svc" in last for n in waiting_on), log

    other = make_cluster()
    [run] = other.apply(seed_example(), pull_delays={2: 3.0})
    assert_all_succeeded(other, run, 70)
    assert_barrier_held(run)


@pytest.mark.timeout(120)
def test_coordinator_replaced_with_a_new_address_mid_barrier(cluster: Cluster) -> None:
    """Pod 0 (the coordinator) is replaced while everyone waits for the late pod 2: the members
    re-resolve it, open sessions to the new one, and all pass."""
    [run] = cluster.apply(seed_example(), start_delays={2: 4.0})
    old = run.pod(0)
    cluster.wait_log(run.pod(1), r"reached example-job-0\.", 10)
    new = cluster.replace_pod(old)
    assert new.address != old.address
    assert_all_succeeded(cluster, run, 70)
    assert_barrier_held(run)


@pytest.mark.timeout(120)
def test_init_container_mode_with_publish_not_ready(cluster: Cluster) -> None:
    """The init container waits, the main container starts only after the barrier."""
    wl = with_publish_not_ready(workload.load(WORKLOADS / "agent-init-not-ready.yaml"), True)
    [run] = cluster.apply(wl, start_delays={1: 2.0})
    assert cluster.wait_job(run, 60) == "Complete"
    for i in range(2):
        pod = run.pod(i)
        assert pod.exit_codes == {"wait-for-peers": 0, "train": 0}
        assert "barrier released" in cluster.logs(pod, "wait-for-peers")
    assert_barrier_held(run)


@pytest.mark.timeout(180)
def test_the_exit_barrier_holds_every_pod_until_the_last_workload_ends(cluster: Cluster) -> None:
    """`run --exit-barrier` in the box: pod 2's workload ends 3 s after the others' and pod 1's
    fails with 7. No pod ends before pod 2's workload has, each pod's exit code is its own
    workload's, and the others say which pod's workload failed."""
    script = '[ "$RANK" != 2 ] || sleep 3; echo "workload $RANK done"; [ "$RANK" != 1 ] || exit 7'
    args = ("run", "--exit-barrier", "--exit-timeout", "60s", "--", "sh", "-c", script)
    [run] = cluster.apply(with_args(seed_example(), "peer-agent", args))
    pods = [run.pod(i) for i in range(3)]
    cluster.wait_for(lambda: all(p.ended for p in pods), 90, "every pod to end")
    logs = "\n".join(f"--- {p.name}\n{cluster.logs(p)}" for p in pods)
    assert [p.exit_codes["peer-agent"] for p in pods] == [0, 7, 0], logs
    late = pods[2].started_at
    assert late is not None, logs
    for pod in pods:  # nobody left before pod 2's workload, 3 s after its start, had ended
        assert pod.ended_at is not None and pod.ended_at >= late + 3.0, logs
    assert "example-job-1" in cluster.logs(pods[0]) and "exit code 7" in cluster.logs(pods[0])
