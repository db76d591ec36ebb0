"""CPU limits as kubelet enforces them: a CFS quota on the container's cpu cgroup.

`resources.limits.cpu: 100m` becomes a quota of 10 ms of CPU per 100 ms period (kubelet's
default `cpuCFSQuotaPeriod`); a container that used its quota is throttled until the next
period, so CPU time turns into wall time. Each limited container gets its own cgroup under
`peer-agent-harness/` in the cpu hierarchy: cgroup v1 `cpu.cfs_quota_us`/`cpu.cfs_period_us`
(this machine), v2 `cpu.max` where the unified hierarchy is mounted. The container's first
process enters it before it execs anything of the container (`sh -c 'echo $$ > cgroup.procs'`).
Every cgroup is registered with `leftovers`, so a killed run's are removed by the next run.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tests.harness import leftovers

__all__ = ["PERIOD_US", "CpuCgroup"]

PERIOD_US = 100_000  # kubelet's default CFS period
MIN_QUOTA_US = 1_000  # the kernel's (and kubelet's) smallest quota
_V2 = Path("/sys/fs/cgroup/cgroup.controllers").exists()
ROOT = Path("/sys/fs/cgroup") if _V2 else Path("/sys/fs/cgroup/cpu")
PARENT = ROOT / "peer-agent-harness"


def _enable_cpu_controller() -> None:
    """v2: a child cgroup has the cpu controller only if every ancestor delegates it."""
    for parent in (ROOT, PARENT):
        control = parent / "cgroup.subtree_control"
        if "cpu" not in control.read_text().split():
            control.write_text("+cpu")


class CpuCgroup:
    """One container's cpu cgroup with the quota of ``limit`` millicores."""

    def __init__(self, name: str, limit: int) -> None:
        self.limit = limit
        self.path = PARENT / name
        PARENT.mkdir(exist_ok=True)
        if _V2:
            _enable_cpu_controller()
        self.path.mkdir()
        leftovers.register_cgroup(self.path)
        quota = max(MIN_QUOTA_US, limit * PERIOD_US // 1000)
        if _V2:
            (self.path / "cpu.max").write_text(f"{quota} {PERIOD_US}")
        else:
            (self.path / "cpu.cfs_period_us").write_text(str(PERIOD_US))
            (self.path / "cpu.cfs_quota_us").write_text(str(quota))

    def quota(self) -> tuple[int, int]:
        """(quota, period) in microseconds, as the kernel has them."""
        if _V2:
            quota, period = (self.path / "cpu.max").read_text().split()
            return int(quota), int(period)
        quota = (self.path / "cpu.cfs_quota_us").read_text()
        return int(quota), int((self.path / "cpu.cfs_period_us").read_text())

    def stat(self) -> dict[str, int]:
        """The kernel's throttling counters: ``nr_periods`` (periods in which the cgroup
        wanted CPU) and ``nr_throttled`` (periods it used its quota up and was stopped)."""
        fields = dict(line.split() for line in (self.path / "cpu.stat").read_text().splitlines())
        return {k: int(fields[k]) for k in ("nr_periods", "nr_throttled")}

    def enter_argv(self, argv: Sequence[str]) -> list[str]:
        """``argv`` run inside this cgroup from its first instruction on."""
        procs = str(self.path / "cgroup.procs")
        return ["sh", "-c", 'echo $$ > "$0" && exec "$@"', procs, *argv]

    def remove(self) -> None:
        """Remove the cgroup once its processes are gone (killed ones may still be exiting;
        one still there after 5 s stays registered, and the next run's sweep removes it)."""
        if leftovers.remove_cgroup(self.path, wait=5.0):
            leftovers.unregister_cgroup(self.path)
