"""Cold start: from `exec` to the first DNS query, in CPU (user + system) and wall time.

What an init container pays before it does anything useful, and what a CPU limit multiplies
(under `limits.cpu: 100m`, 10 ms of CPU is 100 ms of waiting). Each tool starts as in a pod:
its own mount namespace, whose /etc/resolv.conf names cluster DNS (a socket of ours on
127.77.0.1:53, which notes the first query and never answers) with the pod's search list, and
a clean environment (no PYTHONDONTWRITEBYTECODE: an image has its bytecode).

- ``peer-agent``: the agent installed from its wheel into a fresh venv (as the image has
  it: bytecode compiled at install), ``peer-agent wait``.
- ``peer-agent zipapp``: ``python3 peer-agent.pyz wait`` with the Python whose bytecode it
  carries, from a venv with nothing installed.
- ``anyio.run``: the floor for a Python agent built on anyio: the wheel's venv Python running
  ``anyio.run`` of a coroutine that only sends one datagram to cluster DNS (the agent's first
  query is its first act inside ``anyio.run`` too). Rounds pair it with the wheel's start, so
  what the agent adds is measured on the same machine state.
- ``seed``: the seed's bash loop (its first query is ping's, for the first peer's name).

When the query arrives the process group is stopped, and its CPU is the sum of its tasks'
``/proc/<pid>/task/<tid>/schedstat`` run times (nanoseconds; ``rusage`` would need the tasks to
end, and a killed ping's would be lost); then it is killed. The launch wrapper (`unshare`, a
`sh` that bind-mounts resolv.conf, then execs the tool) runs in the same task before the tool
and adds about 1 ms of CPU to every tool's figure alike.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.common import ROOT, free_port
from bench.workloads import script

__all__ = ["TOOLS", "Launchers", "cold_start", "launchers"]

# peer-agent: the installed wheel
TOOLS = ("peer-agent", "peer-agent zipapp", "anyio.run", "seed")
DNS = "127.77.0.1"
#: anyio.run of a coroutine that does nothing but send the first query (then waits to be
#: stopped, as the agent is)
ANYIO_RUN = f"""\
import socket
import anyio

async def main() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.sendto(bytes(12), ("{DNS}", 53))
        await anyio.sleep(60)

anyio.run(main)
"""
RESOLV = (
    f"search default.svc.cluster.local svc.cluster.local cluster.local\n"
    f"nameserver {DNS}\noptions ndots:5\n"
)
# The pod's environment: what kubelet sets, nothing of this shell's.
ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root"}
Sample = dict[str, Any]


class Launchers:
    """The installed wheel and the zipapp, built once per bench run under ``work``."""

    def __init__(self, work: Path, driver: str = "auto") -> None:
        self.work, self.driver = work, driver  # peer-agent's --driver
        self.wheel_venv = work / "wheel-venv"
        self.bare_venv = work / "bare-venv"
        self.pyz = work / "peer-agent.pyz"
        self.resolv = work / "resolv.conf"

    def build(self) -> None:
        """Our wheel into a fresh venv (dependencies from the package index, as a user gets
        them), the zipapp with this Python's bytecode, and a venv with nothing installed."""
        dist = self.work / "dist"
        # -I: neither this checkout (its egg-info would count as installed) nor PYTHONPATH
        run = [sys.executable, "-I", "-m", "pip", "-q", "--disable-pip-version-check"]
        subprocess.run([*run, "wheel", "--no-deps", "-w", dist, ROOT], check=True)
        for venv in (self.wheel_venv, self.bare_venv):
            subprocess.run([sys.executable, "-m", "venv", "--clear", venv], check=True)
        [wheel] = dist.glob("peer_agent-*.whl")
        pip: list[str | Path] = [self.wheel_venv / "bin" / "python", "-I", "-m", "pip", "-q"]
        subprocess.run([*pip, "--disable-pip-version-check", "install", wheel], check=True)
        zipapp = ROOT / "tools" / "build_zipapp.py"
        build: list[str | Path] = [sys.executable, zipapp, "-o", self.pyz, ROOT]
        subprocess.run(build, check=True, stdout=subprocess.DEVNULL)
        self.resolv.write_text(RESOLV)

    def agent_command(self) -> tuple[str, ...]:
        """The installed `peer-agent` (for the cluster cases' `image: peer-agent`)."""
        return (str(self.wheel_venv / "bin" / "peer-agent"),)

    def argv(self, tool: str, port: int) -> list[str]:
        wait = ["wait", "--peers", "3", "--index", "0", "--hostname", "example-job-0",
                "--service", "headless-svc", "--namespace", "default", "--port", str(port),
                "--listen", "127.0.0.1", "--timeout", "30s", "--driver", self.driver]  # fmt: skip
        if tool == "peer-agent":
            return [str(self.wheel_venv / "bin" / "peer-agent"), *wait]
        if tool == "peer-agent zipapp":
            return [str(self.bare_venv / "bin" / "python3"), str(self.pyz), *wait]
        if tool == "anyio.run":
            return [str(self.wheel_venv / "bin" / "python"), "-c", ANYIO_RUN]
        if tool == "seed":
            return ["bash", "-c", script("seed", 3, workload="")]
        raise ValueError(tool)


def _group_cpu_ns(pgid: int) -> int:
    """Run time so far of every task of every process in process group ``pgid``."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = (entry / "stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[2]) != pgid:
                continue
            for task in (entry / "task").iterdir():
                total += int((task / "schedstat").read_text().split()[0])
    return total


@contextlib.contextmanager
def _first_to_wake() -> Iterator[None]:
    """This thread at real-time priority (not inherited by the tools it starts), so it runs as
    soon as the query arrives: a tool that goes on after its first query (the agent sends its
    next ones, probes itself) is charged for all it does until the bench stops it, which on a
    loaded machine took tens of milliseconds. Without the privilege, as it is."""
    try:
        policy, param = os.sched_getscheduler(0), os.sched_getparam(0)
        os.sched_setscheduler(0, os.SCHED_FIFO | os.SCHED_RESET_ON_FORK, os.sched_param(50))
    except OSError:
        yield
        return
    try:
        yield
    finally:
        os.sched_setscheduler(0, policy, param)


def cold_start(launchers: Launchers, tool: str, timeout: float = 10.0) -> Sample:
    with _first_to_wake(), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as dns:
        dns.bind((DNS, 53))
        dns.settimeout(timeout)
        mount = 'mount --bind "$0" /etc/resolv.conf && exec "$@"'
        wrapper = ["unshare", "--mount", "--", "sh", "-c", mount, str(launchers.resolv)]
        started = time.monotonic()
        proc = subprocess.Popen(
            [*wrapper, *launchers.argv(tool, free_port())],
            env=ENV,
            cwd="/",
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        try:
            dns.recvfrom(4096)
            wall = time.monotonic() - started
            os.killpg(proc.pid, signal.SIGSTOP)
            cpu = _group_cpu_ns(proc.pid) / 1e9
        except TimeoutError:
            proc.kill()
            err = proc.communicate(timeout=10)[1].decode(errors="replace")
            return {"ok": False, "note": f"no DNS query within {timeout:g}s: {err[-300:]}"}
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate(timeout=10)
    return {"ok": True, "cpu_s": round(cpu, 4), "wall_s": round(wall, 4)}


@contextlib.contextmanager
def launchers(driver: str = "auto") -> Iterator[Launchers]:
    """Built launchers for the whole bench run (the cluster cases run the wheel too)."""
    with tempfile.TemporaryDirectory(prefix="peer-agent-bench-launchers-") as work:
        built = Launchers(Path(work), driver)
        built.build()
        yield built
