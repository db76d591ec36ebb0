"""Fault tests: agents in-process or as processes, a fault-injecting DNS, and a results recorder.

Every test's outcome is written to ``build/reliability.json`` at the end of the session (set
``PEER_AGENT_RELIABILITY_JSON`` for another path); ``tools/reliability_table.py`` renders it as
``docs/reliability.md``. A test adds its own counts with the ``record`` fixture.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import pytest

from agent.config.model import Config
from agent.config.parse import build_config
from agent.core.log import LogLine
from agent.core.outcome import Outcome
from agent.core.timing import DEFAULT_TIMING, Timing
from agent.io.runner import Deps, serve_and_wait
from agent.topology.podfiles import PodFacts
from tests.support.faultdns import FaultDNS

JOB, SERVICE, NAMESPACE, ZONE = "example-job", "headless-svc", "default", "cluster.local"
ROOT = Path(__file__).resolve().parents[2]
_nets = itertools.count()
# Each job gets ports of its own (agent port, health port + 1), from a random start: agents of
# other test sessions on this machine (same job name, loopback) can then never answer ours.
_ports = itertools.count(random.Random().randrange(20000, 28000, 2), 2)
Record = Callable[..., None]
#: the pace of the agents tests run in this process (``fast_progress`` changes it)
TIMING = DEFAULT_TIMING


def fqdn(i: int, job: str = JOB) -> str:
    return f"{job}-{i}.{SERVICE}.{NAMESPACE}.svc.{ZONE}"


def next_net() -> int:
    """A loopback /24 of its own (127.0.<net>.0) for each job, so agents share one port."""
    return 200 + next(_nets) % 50


@pytest.fixture
def fault_dns() -> Iterator[FaultDNS]:
    with FaultDNS() as server:
        yield server


@pytest.fixture
def fast_progress(monkeypatch: pytest.MonkeyPatch) -> None:
    """Progress lines every 0.25 s instead of 5 s, so a test can read the reason a user would:
    the agents this test runs in-process are given that ``Timing`` (``agent_deps``)."""
    monkeypatch.setattr(sys.modules[__name__], "TIMING", Timing(progress_every=0.25))


def agent_deps(**deps: Any) -> Deps:
    """What an in-process agent of a fault test runs with: the test's pace, and ``deps``."""
    return Deps(timing=TIMING, **deps)


# --- agents in this process -----------------------------------------------------------------------
@dataclass
class Pod:
    index: int
    config: Config
    events: list[LogLine] = field(default_factory=list)
    outcome: Outcome | None = None
    error: Exception | None = None
    done: anyio.Event = field(default_factory=anyio.Event)
    _waiters: list[tuple[Callable[[LogLine], bool], anyio.Event]] = field(default_factory=list)

    def report(self, event: LogLine) -> None:
        self.events.append(event)
        for predicate, flag in self._waiters:
            if predicate(event):
                flag.set()

    async def until(self, predicate: Callable[[LogLine], bool], timeout: float = 15.0) -> LogLine:
        """The first event (already seen or still to come) for which ``predicate`` holds."""
        flag = anyio.Event()
        self._waiters.append((predicate, flag))
        try:
            with anyio.fail_after(timeout):
                while True:
                    for event in self.events:
                        if predicate(event):
                            return event
                    await flag.wait()
                    flag = anyio.Event()
                    self._waiters[-1] = (predicate, flag)
        finally:
            self._waiters[:] = [w for w in self._waiters if w[0] is not predicate]

    async def progress_with(self, *texts: str, timeout: float = 15.0) -> LogLine:
        """The first progress line that contains every one of ``texts``."""
        return await self.until(
            lambda e: e.kind == "progress" and all(t in e.message for t in texts), timeout
        )

    def messages(self) -> str:
        return "\n".join(e.message for e in self.events)


@dataclass
class Job:
    """A job of ``peers`` agents on 127.0.<net>.<i+1>, all asking ``dns``."""

    dns: FaultDNS
    peers: int
    job: str = JOB
    uid: str = ""
    timeout: str = "30s"
    net: int = field(default_factory=next_net)
    port: int = field(default_factory=lambda: next(_ports))
    published: dict[int, str] = field(default_factory=dict)

    def address(self, i: int) -> str:
        return f"127.0.{self.net}.{i + 1}"

    def fqdn(self, i: int) -> str:
        return fqdn(i, self.job)

    @property
    def service(self) -> str:
        """The headless Service's own name: one A record per published pod."""
        return f"{SERVICE}.{NAMESPACE}.svc.{ZONE}"

    def publish(self, *indices: int) -> None:
        """Publish pods (default: all) as CoreDNS does: their own names and the Service's."""
        for i in indices or range(self.peers):
            self.dns.set(self.fqdn(i), self.address(i))
            self.published[i] = self.address(i)
        self.dns.set(self.service, *(self.published[i] for i in sorted(self.published)))

    def move(self, i: int, address: str) -> None:
        """Pod ``i`` replaced by a pod at ``address``: its name and the Service's list say so."""
        self.published[i] = address
        self.dns.set(self.fqdn(i), address)
        self.dns.set(self.service, *(self.published[k] for k in sorted(self.published)))

    def config(self, i: int, **values: str) -> Config:
        base = {
            "peers": str(self.peers),
            "index": str(i),
            "service": SERVICE,
            "namespace": NAMESPACE,
            "listen": self.address(i),
            "port": str(self.port),
            "dns_server": self.dns.server,
            "timeout": self.timeout,
            "job_uid": self.uid,
        }
        return build_config("wait", {**base, **values}, PodFacts(hostname=f"{self.job}-{i}"))

    def start(self, tg: anyio.abc.TaskGroup, i: int, **values: str) -> Pod:
        pod = Pod(i, self.config(i, **values))

        async def run() -> None:
            try:
                pod.outcome = await serve_and_wait(pod.config, report=pod.report, deps=agent_deps())
            except Exception as exc:  # the test reads it: a timeout or abort is a result
                pod.error = exc
            finally:
                pod.done.set()

        tg.start_soon(run)
        return pod


async def all_done(pods: list[Pod], timeout: float = 20.0) -> None:
    with anyio.fail_after(timeout):
        for pod in pods:
            await pod.done.wait()


def released(pods: list[Pod]) -> bool:
    return all(p.outcome is not None and p.error is None for p in pods)


# --- agents as processes --------------------------------------------------------------------------
class AgentProcess:
    """``python -m agent`` with its stderr read by a thread, each line timestamped."""

    def __init__(
        self,
        argv: list[str],
        *,
        env: dict[str, str] | None = None,
        python_args: list[str] | None = None,
        **popen: Any,
    ):
        """``python_args`` instead of ``-m agent``: e.g. ``-c`` a script that patches, then runs
        ``agent.commands.cli.main``."""
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, *(python_args or ["-m", "agent"]), *argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            **popen,
        )
        self.lines: list[tuple[float, str]] = []
        self._out: list[str] = []
        self._cond = threading.Condition()
        #: its stderr is read to the end: every line it wrote is in ``lines``
        self._eof = False
        self._readers = [
            threading.Thread(target=self._read, daemon=True),
            threading.Thread(target=lambda: self._out.extend(self.proc.stdout or ()), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._cond:
                self.lines.append((time.monotonic(), line))
                self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def wait_line(self, text: str, timeout: float = 20.0, *, count: int = 1) -> float:
        """When the ``count``-th stderr line containing ``text`` came; AssertionError if it
        never does. A process that ended is judged once its stderr is read to the end, not at
        its exit: a ``wait`` agent logs its release and exits at once, and on a loaded machine
        the reader was behind the exit, so a released pod was reported as never released."""

        def times() -> list[float]:
            return [at for at, line in self.lines if text in line]

        with self._cond:
            self._cond.wait_for(lambda: len(times()) >= count or self._eof, timeout)
            if len(seen := times()) >= count:
                return seen[count - 1]
        code = self.proc.poll()
        if code is None and self._eof:  # its stderr closed as it exits: the code comes next
            with contextlib.suppress(subprocess.TimeoutExpired):
                code = self.proc.wait(5)
        state = "still running" if code is None else f"exited with code {code}"
        raise AssertionError(f"{text!r} not logged {count} time(s) ({state}):\n{self.stderr}")

    def finish(self, timeout: float = 30.0) -> int:
        """Wait for the exit (kill after ``timeout``) and for all its output."""
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for reader in self._readers:
            reader.join(timeout=5)
        return self.proc.returncode

    @property
    def stdout(self) -> str:
        return "".join(self._out)

    def stop(self, signum: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signum)
        return self.finish()

    @property
    def stderr(self) -> str:
        with self._cond:
            return "".join(line for _, line in self.lines)


def agent_argv(job: Job, command: str, i: int, *extra: str) -> list[str]:
    return [
        command,
        "--peers",
        str(job.peers),
        "--index",
        str(i),
        "--hostname",
        f"{job.job}-{i}",
        "--service",
        SERVICE,
        "--namespace",
        NAMESPACE,
        "--dns-server",
        job.dns.server,
        "--listen",
        job.address(i),
        "--port",
        str(job.port),
        *(["--health-port", str(job.port + 1)] if command == "sidecar" else []),
        *(["--job-uid", job.uid] if job.uid else []),
        *extra,
    ]


def wait_port(job: Job, i: int, timeout: float = 10.0) -> None:
    """Until pod ``i``'s agent accepts connections (it has just been started)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection((job.address(i), job.port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


@pytest.fixture
def processes() -> Iterator[list[AgentProcess]]:
    """Agent processes a test starts; any still running at the end are killed."""
    started: list[AgentProcess] = []
    yield started
    for p in started:
        if p.proc.poll() is None:
            p.proc.kill()
        p.finish()


# --- the results recorder -------------------------------------------------------------------------
@pytest.fixture
def record(request: pytest.FixtureRequest) -> Record:
    """``record(tries=10000, barrier_s=1.2)``: numbers that go into the reliability table."""

    def add(**values: object) -> None:
        request.node.user_properties.extend(values.items())

    return add


_results: dict[str, dict[str, Any]] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if "tests/faults/" not in report.nodeid.replace(os.sep, "/"):
        return
    entry = _results.setdefault(
        report.nodeid, {"test": report.nodeid, "outcome": "passed", "seconds": 0.0, "extra": {}}
    )
    entry["seconds"] = round(entry["seconds"] + report.duration, 3)
    entry["extra"].update({k: v for k, v in report.user_properties})
    # Hypothesis leaves its statistics on the teardown report: count the examples as tries.
    stats = report.__dict__.get("_hypothesis_stats")
    if isinstance(stats, str) and "tries" not in entry["extra"]:
        examples = sum(int(n) for n in re.findall(r"(\d+) passing", stats))
        entry["extra"]["tries"] = examples or None
    xfail = hasattr(report, "wasxfail")
    if report.skipped:
        entry["outcome"] = "xfailed" if xfail else "skipped"
        if xfail:
            entry["reason"] = str(getattr(report, "wasxfail", ""))
    elif report.failed:
        entry["outcome"] = "failed"
    elif report.when == "call" and xfail:
        entry["outcome"] = "xpassed"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if isinstance(item, pytest.Function) and "tests/faults/" in item.nodeid:
            doc = (item.function.__doc__ or "").strip().split("\n\n")[0]
            item.user_properties.append(("doc", " ".join(doc.split())))


def pytest_sessionfinish(session: pytest.Session) -> None:
    if not _results:
        return
    path = Path(os.environ.get("PEER_AGENT_RELIABILITY_JSON", ROOT / "build" / "reliability.json"))
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {
        "generated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "python": sys.version.split()[0],
        "results": sorted(_results.values(), key=lambda r: r["test"]),
    }
    path.write_text(json.dumps(body, indent=2, default=str) + "\n")
