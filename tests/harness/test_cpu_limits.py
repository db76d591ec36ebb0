"""`resources.limits.cpu` is enforced as kubelet does: a CFS quota on the container's cgroup.

The assertions read the kernel's own accounting, never a clock: the quota files, and the
throttling counters of the container's cgroup (a period is 100 ms; a container under 100m may
use 10 ms of CPU in each, so burning C seconds of CPU takes at least C / 0.01 periods).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness import leftovers
from tests.harness.cgroups import PARENT, PERIOD_US
from tests.harness.cluster import Cluster
from tests.harness.workload import Workload, WorkloadError, millicores, parse

BURN = 0.3  # CPU seconds each container burns (3 s of wall time under 100m)
# A CPU-bound loop that stops after BURN seconds of its own CPU time, whatever the wall time.
SCRIPT = f"import itertools, time; any(time.process_time() >= {BURN} for _ in itertools.count())"


def _slice_us() -> int:
    """How much runtime CFS hands a CPU at a time (Documentation/scheduler/sched-bwc.rst)."""
    knob = Path("/proc/sys/kernel/sched_cfs_bandwidth_slice_us")
    return int(knob.read_text()) if knob.exists() else 5_000


def job(limit: str | None) -> Workload:
    limits = f"{{cpu: {limit}, memory: 64Mi}}"
    resources = f"\n          resources: {{limits: {limits}}}" if limit else ""
    return parse(
        f"""
apiVersion: batch/v1
kind: Job
metadata: {{name: burn}}
spec:
  completionMode: Indexed
  completions: 1
  parallelism: 1
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: main
          image: python
          command: [python3, -c, {SCRIPT!r}]{resources}
"""
    )


def test_cpu_quantities_in_millicores() -> None:
    assert [millicores(q) for q in ("100m", "0.5", 2, "1.5", 0.25, "2500m")] == [
        100,
        500,
        2000,
        1500,
        250,
        2500,
    ]
    with pytest.raises(WorkloadError, match=r"resources.limits.cpu: not a CPU quantity"):
        job("lots")
    assert job("100m").job().template.containers[0].cpu_limit == 100
    assert job(None).job().template.containers[0].cpu_limit is None


@pytest.mark.timeout(120)
def test_a_container_under_100m_gets_a_tenth_of_a_core(cluster: Cluster) -> None:
    [limited] = cluster.apply(job('"100m"'))
    assert cluster.wait_job(limited, 60) == "Complete"
    pod = limited.pod(0)
    quota, period = pod.cpu_quota["main"]
    assert (quota, period) == (10_000, PERIOD_US)  # 10 ms of CPU per 100 ms
    used = pod.cpu_seconds["main"]
    assert used >= BURN
    stat = pod.cpu_stat["main"]
    # The kernel gave it about `quota` per period: it needed nearly used/quota periods to burn
    # what it burnt. Not exactly: CFS hands a CPU its runtime in slices and stops a task only
    # once its CPU's slice is spent, so a period may overrun by up to a slice (CI saw 29
    # periods for 30.4 quotas). Without a quota, 0.3 s of CPU takes 3 periods.
    allowed = (quota + _slice_us()) / 1e6
    assert stat["nr_periods"] >= used / allowed - 1, (used, stat)
    # ...and stopped it, out of quota, in nearly all of them.
    assert stat["nr_throttled"] >= 0.8 * stat["nr_periods"], stat
    # The cgroup is gone with the pod, and nothing is left registered for a sweep.
    assert not (PARENT / f"{pod.spec.net.netns}-main").exists()
    assert not any((leftovers.run_dir() / "cgroups").iterdir())


@pytest.mark.timeout(120)
def test_a_container_without_a_limit_gets_no_quota(cluster: Cluster) -> None:
    [free] = cluster.apply(job(None))
    assert cluster.wait_job(free, 60) == "Complete"
    pod = free.pod(0)
    assert pod.cpu_seconds["main"] >= BURN
    assert pod.cpu_quota == {} and pod.cpu_stat == {}
    assert not list(Path(PARENT).glob(f"{pod.spec.net.netns}-*"))
