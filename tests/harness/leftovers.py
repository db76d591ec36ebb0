"""Ownership of what the harness creates, so a run that was killed is cleaned up by the next.

Every process that uses the harness gets a run id. Its namespaces are named `pa<runid>-...`,
its host-side links `pa<runid>v<n>`, and `/run/peer-agent-harness/<runid>/` records the owner
(pid and start time, so a reused pid is not mistaken for it), the pids it started, the
temporary paths and the cgroups (CPU limits) it made. At the first use, every run whose owner is
gone is swept: processes killed, namespaces and /etc/netns entries deleted, paths and cgroups
removed. Runs of live owners (another
test session on the same machine) are never touched.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

# Root (CI, the netns tests) keeps the registry in /run; an unprivileged user of ClusterDNS alone
# gets a per-user one.
REGISTRY = (
    Path("/run/peer-agent-harness")
    if os.geteuid() == 0
    else Path(f"/tmp/peer-agent-harness-{os.getuid()}")
)
ETC_NETNS = Path("/etc/netns")
NETNS_DIR = Path("/run/netns")
PREFIX = "pa"

_run_id: str | None = None


def _start_time(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22 (starttime); the command name in field 2 may contain spaces, so split after it.
    return stat.rsplit(")", 1)[1].split()[19]


def _owner_alive(run_dir: Path) -> bool:
    try:
        pid_text, start = (run_dir / "owner").read_text().split()
    except (OSError, ValueError):
        return False
    return _start_time(int(pid_text)) == start


def run_id() -> str:
    """This process's run id; the first call sweeps the leftovers of dead runs."""
    global _run_id
    if _run_id is None:
        REGISTRY.mkdir(parents=True, exist_ok=True)
        sweep()
        rid = secrets.token_hex(3)
        # Built under a name sweep() ignores, then renamed: a concurrent sweep never sees a
        # run directory without its owner.
        staging = REGISTRY / f"staging-{rid}"
        (staging / "pids").mkdir(parents=True)
        (staging / "paths").mkdir()
        (staging / "cgroups").mkdir()
        (staging / "owner").write_text(f"{os.getpid()} {_start_time(os.getpid())}\n")
        staging.rename(REGISTRY / rid)
        _run_id = rid
        # A normal exit cleans up after itself (anything still registered, then the record);
        # a killed process is swept by the next run.
        atexit.register(_sweep_run, REGISTRY / rid)
    return _run_id


def run_dir() -> Path:
    """This run's registry directory (world-readable: pods running as users read shims here)."""
    return REGISTRY / run_id()


def prefix() -> str:
    """The name prefix of everything this run creates."""
    return f"{PREFIX}{run_id()}"


def register_pid(pid: int) -> None:
    start = _start_time(pid)
    if start is not None:
        (REGISTRY / run_id() / "pids" / str(pid)).write_text(start)


def unregister_pid(pid: int) -> None:
    (REGISTRY / run_id() / "pids" / str(pid)).unlink(missing_ok=True)


def register_path(path: Path) -> None:
    """A temporary file or directory to delete if this run dies before removing it."""
    key = str(path).strip("/").replace("/", "%")
    (REGISTRY / run_id() / "paths" / key).write_text(str(path))


def unregister_path(path: Path) -> None:
    key = str(path).strip("/").replace("/", "%")
    (REGISTRY / run_id() / "paths" / key).unlink(missing_ok=True)


def register_cgroup(path: Path) -> None:
    """A cgroup directory (a container's CPU limit) to remove if this run dies first."""
    key = str(path).strip("/").replace("/", "%")
    (REGISTRY / run_id() / "cgroups" / key).write_text(str(path))


def unregister_cgroup(path: Path) -> None:
    key = str(path).strip("/").replace("/", "%")
    (REGISTRY / run_id() / "cgroups" / key).unlink(missing_ok=True)


def remove_cgroup(path: Path, wait: float) -> bool:
    """rmdir the cgroup (its control files go with it), retrying for ``wait`` s while a killed
    process of it is still exiting (EBUSY: the kernel offers nothing to await). False: still
    there."""
    deadline = time.monotonic() + wait
    while True:
        try:
            path.rmdir()
            return True
        except FileNotFoundError:
            return True
        except OSError:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)


def netns_names(name_prefix: str) -> list[str]:
    try:
        return sorted(p.name for p in NETNS_DIR.iterdir() if p.name.startswith(name_prefix))
    except FileNotFoundError:
        return []


def kill_netns_processes(names: Sequence[str]) -> None:
    """SIGKILL every process whose network namespace is one of names (`ip netns pids`, batched).

    One pass over /proc instead of one `ip netns pids` per namespace: 256 pods die at once.
    """
    inodes = set()
    for name in names:
        with contextlib.suppress(OSError):
            inodes.add(os.stat(NETNS_DIR / name).st_ino)
    if not inodes:
        return
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            inode = os.stat(entry / "ns" / "net").st_ino
        except OSError:
            continue
        if inode in inodes:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(entry.name), signal.SIGKILL)


def delete_netns(names: Sequence[str]) -> None:
    """Kill the processes in, and delete, the given namespaces and their /etc/netns dirs."""
    kill_netns_processes(names)
    if names:
        batch = "".join(f"netns del {n}\n" for n in names)
        subprocess.run(
            ["ip", "-force", "-batch", "-"],
            input=batch,
            text=True,
            capture_output=True,
            check=False,
        )
    for name in names:
        shutil.rmtree(ETC_NETNS / name, ignore_errors=True)


def _sweep_run(run_dir: Path) -> None:
    for pid_file in (run_dir / "pids").glob("*"):
        pid = int(pid_file.name)
        if _start_time(pid) == pid_file.read_text():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    name_prefix = f"{PREFIX}{run_dir.name}"
    delete_netns(netns_names(name_prefix))
    if ETC_NETNS.exists():
        for entry in ETC_NETNS.glob(f"{name_prefix}*"):
            shutil.rmtree(entry, ignore_errors=True)
    for path_file in (run_dir / "paths").glob("*"):
        shutil.rmtree(path_file.read_text(), ignore_errors=True)
    for cgroup_file in (run_dir / "cgroups").glob("*"):
        remove_cgroup(Path(cgroup_file.read_text()), wait=5.0)
    shutil.rmtree(run_dir, ignore_errors=True)


def sweep() -> None:
    """Remove everything left by runs whose owner process is gone."""
    if not REGISTRY.exists():
        return
    for run_dir in REGISTRY.iterdir():
        if run_dir.name.startswith("staging-") or run_dir.name == _run_id:
            continue
        if not _owner_alive(run_dir):
            _sweep_run(run_dir)
