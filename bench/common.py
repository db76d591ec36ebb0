"""What every case shares: launching an agent and watching its JSON log, descriptors, free ports."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import random
import resource
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["ROOT", "AgentProc", "PeerSim", "free_port", "raise_nofile"]

ROOT = Path(__file__).resolve().parent.parent
JOB, SERVICE, NAMESPACE, ZONE = "bench", "bench-svc", "default", "cluster.local"
SERVICE_FQDN = f"{SERVICE}.{NAMESPACE}.svc.{ZONE}."


def fqdn(index: int) -> str:
    return f"{JOB}-{index}.{SERVICE_FQDN}"


def raise_nofile(need: int) -> None:
    """Raise this process's descriptor limits (children inherit them): root may raise the hard
    limit too, which 10,000 sessions plus 10,000 listeners need."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= need:
        return
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, max(hard, need)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def free_port() -> int:
    """A TCP port free on loopback now, below the ephemeral range: the simulated peers bind
    it on thousands of addresses, and an outgoing connection's ephemeral port (or one left in
    FIN_WAIT by the previous run) would otherwise collide with one of them now and then."""
    low, _ = (int(x) for x in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    for _ in range(100):
        port = random.randrange(max(1024, low - 12000), low)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise OSError("no free port below the ephemeral range")


def _no_site() -> list[str]:
    """``-S`` when BENCH_NO_SITE=1: the agent started as from the image's wheel install, without
    this venv's ``.pth`` files (the editable install's finder imports pathlib, urllib.parse,
    fnmatch and importlib.util into every agent, setuptools' distutils shim more: ~1 MB a pod
    that a pod in a cluster never holds); its packages reach it through PYTHONPATH."""
    if os.environ.get("BENCH_NO_SITE") != "1":
        return []
    packages = [p for p in sys.path if p.endswith("site-packages")]
    os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), *packages])
    return ["-S"]


@dataclass
class AgentProc:
    """One agent as a process (``python -m agent``), its JSON log lines stamped on arrival."""

    argv: list[str]
    proc: subprocess.Popen[bytes] = field(init=False)
    started: float = field(init=False)
    #: (time.monotonic() when the line arrived, the parsed record or {"raw": text})
    lines: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    rss_kb: int | None = None  # peak resident set: VmHWM with watch_rss(), else wait4's
    cpu_s: float | None = None  # user + system CPU time over the whole run
    code: int | None = None
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _eof: bool = False  # stderr closed: the agent has exited (or is about to)

    @classmethod
    def launch(cls, command: str, index: int, peers: int, dns: str, *args: str) -> AgentProc:
        # BENCH_AGENT=script.py runs that instead of `-m agent` (a candidate fix, sized first)
        entry = [os.environ["BENCH_AGENT"]] if os.environ.get("BENCH_AGENT") else ["-m", "agent"]
        argv = [
            sys.executable,
            *_no_site(),
            *entry,
            command,
            "--peers",
            str(peers),
            "--index",
            str(index),
            "--hostname",
            f"{JOB}-{index}",
            "--service",
            SERVICE,
            "--namespace",
            NAMESPACE,
            "--dns-server",
            dns,
            "--log-format",
            "json",
            *args,
        ]
        agent = cls(argv)
        run = argv
        if profile := os.environ.get("BENCH_PROFILE"):  # e.g. /tmp/sweep: py-spy's collapsed stacks
            out = f"{profile}-{index}.txt"
            run = ["py-spy", "record", "--gil", "-r", "200", "-f", "raw", "-o", out, "--", *argv]
        agent.started = time.monotonic()
        agent.proc = subprocess.Popen(
            run, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT
        )
        threading.Thread(target=agent._read, daemon=True).start()
        return agent

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def live(self) -> bool:
        """Not reaped yet: its pid is still its own."""
        return self.code is None

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            at = time.monotonic()
            try:
                record = json.loads(raw)
            except ValueError:
                record = {"raw": raw.decode(errors="replace")}
            with self._cond:
                self.lines.append((at, record if isinstance(record, dict) else {"raw": raw}))
                self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def event(self, kind: str) -> tuple[float, dict[str, Any]] | None:
        with self._cond:
            return next(((t, r) for t, r in self.lines if r.get("event") == kind), None)

    def count(self, kind: str) -> int:
        with self._cond:
            return sum(r.get("event") == kind for _, r in self.lines)

    def wait_event(self, kind: str, timeout: float) -> tuple[float, dict[str, Any]] | None:
        """The first ``kind`` event (arrival time, record), or None at timeout or exit."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = next(((t, r) for t, r in self.lines if r.get("event") == kind), None)
                if found or self._eof:  # never poll(): it would reap the child and lose its rusage
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(min(left, 0.2))

    def finish(self, timeout: float) -> int:
        """Wait for exit (kill at timeout); note the exit code and CPU time (wait4)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, status, usage = os.wait4(self.proc.pid, os.WNOHANG)
            if pid:
                self._reaped(status, usage)
                return self.code or 0
            time.sleep(0.01)
        self.proc.kill()
        _, status, usage = os.wait4(self.proc.pid, 0)
        self._reaped(status, usage)
        return self.code or 0

    def watch_rss(self) -> None:
        """Note the agent's peak resident set from now on: its own VmHWM, read every 10 ms
        until it exits (a zombie has none). wait4's ru_maxrss is no good: exec records the
        replaced address space's peak, and a vforked child's is this process's, which with
        the harness imported exceeds the agent's."""

        def watch() -> None:
            path = Path(f"/proc/{self.proc.pid}/status")
            while self.code is None:
                try:
                    line = next(x for x in path.read_text().splitlines() if x.startswith("VmHWM"))
                except (OSError, StopIteration):
                    return
                self.rss_kb = max(self.rss_kb or 0, int(line.split()[1]))
                time.sleep(0.01)

        threading.Thread(target=watch, daemon=True).start()

    def _reaped(self, status: int, usage: resource.struct_rusage) -> None:
        if self.rss_kb is None:
            self.rss_kb = usage.ru_maxrss
        self.cpu_s = usage.ru_utime + usage.ru_stime
        self.code = os.waitstatus_to_exitcode(status)
        self.proc.returncode = self.code  # so Popen does not try to reap it again

    def tail(self, n: int = 5) -> str:
        with self._cond:
            return " | ".join(
                str(r.get("msg") or r.get("raw", ""))[:200] for _, r in self.lines[-n:]
            )

    def kill(self) -> None:
        if self.code is None:
            self.proc.kill()
            self.finish(5)


@dataclass
class PeerSim:
    """``bench.peersim`` as a process: its JSON progress lines, stamped when they arrive."""

    spec: dict[str, Any]
    proc: subprocess.Popen[str] = field(init=False)

    def __post_init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.peersim", json.dumps(self.spec)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        self._records: queue.Queue[dict[str, Any] | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with contextlib.suppress(ValueError):
                self._records.put(json.loads(line))
        self._records.put(None)

    def read(self, key: str, timeout: float = 120.0) -> dict[str, Any] | None:
        """The next progress record holding ``key``; None at timeout or when the process ended."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                record = self._records.get(timeout=left)
            except queue.Empty:
                return None
            if record is None:
                self._records.put(None)  # stays ended for later reads
                return None
            if key in record:
                return record
        return None

    def tell(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
