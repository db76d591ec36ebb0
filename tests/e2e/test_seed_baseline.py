"""The seed task's own bash ping loop, unchanged, in the cluster in a box: the baseline."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.harness import workload
from tests.harness.cluster import Cluster
from tests.harness.fixtures import ClusterFactory
from tests.harness.pod import RUNNING, SUCCEEDED
from tests.harness.variants import with_publish_not_ready

SEED = Path(__file__).parents[1] / "harness" / "workloads" / "seed.yaml"
SVC = "headless-svc.default.svc.cluster.local"


@pytest.mark.timeout(120)
def test_seed_script_succeeds_when_pods_start_together(make_cluster: ClusterFactory) -> None:
    """With a real cluster's lags the loop works when the pods start together: names appear
    2 s after a pod is Ready (EndpointSlice -> CoreDNS), and a finished pod's address and name
    stay 2 s (sandbox teardown, EndpointSlice). Both longer than the loop's 1 s sleep, so every
    pod pings every other before it is gone. Without them it is the race below: the last pod
    to be Ready pings everyone at once and leaves while the others sleep."""
    cluster = make_cluster(publish_delay=2.0, sandbox_teardown_delay=2.0)
    [run] = cluster.apply(workload.load(SEED))
    assert cluster.wait_job(run, 30) == "Complete"
    for i in range(3):
        log = cluster.logs(run.pod(i))
        assert log.endswith("Successfully pinged pod: example-job-2.headless-svc\n"), log


@pytest.mark.timeout(120)
def test_seed_script_is_stuck_when_a_fast_pod_leaves_first(cluster: Cluster) -> None:
    """The early-exit race (jobset#135). The Service publishes not-ready addresses, as every
    peer-agent manifest does; the script is unchanged. Every pod has its address and DNS name
    from its sandbox on, and the kernel answers ping before any container runs, so pod 0
    pings all three at once, succeeds and leaves DNS. Pod 2's container starts 3 s later (an
    image pull): the name it must ping first is gone, and it retries for ever."""
    wl = with_publish_not_ready(workload.load(SEED), True)
    [run] = cluster.apply(wl, pull_delays={2: 3.0})
    fast, slow = run.pod(0), run.pod(2)
    # bounds for a loaded machine (CI once took over 20 s here): events, not a timing claim
    assert cluster.wait_pod(fast, 60).phase == SUCCEEDED
    cluster.wait_dns(f"example-job-0.{SVC}", lambda a: a.rcode == "NXDOMAIN", 15)
    cluster.wait_log(slow, "Failed to ping pod example-job-0.headless-svc", 30)
    # A bounded look at "for ever": four more seconds of retries, not one success.
    time.sleep(4.0)
    for pod in run.all_pods():
        print(f"$ kubectl logs {pod.name}  # {pod.phase}\n{cluster.logs(pod)}")
    log = cluster.logs(slow)
    assert slow.phase == RUNNING and run.status == "Running"
    assert "Successfully pinged" not in log
    assert log.count("Failed to ping pod example-job-0.headless-svc") >= 4
