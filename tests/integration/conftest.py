"""Integration fixtures: a real unbound as cluster DNS on loopback, agents as processes."""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.harness.clusterdns import ClusterDNS

ZONE = "cluster.local"
SERVICE = "headless-svc"
NAMESPACE = "default"
JOB = "example-job"
#: the two drivers (agent.commands.drivers): a test of the start barrier runs over each with
#: ``pytestmark = pytest.mark.parametrize("driver", DRIVERS, indirect=True)``
DRIVERS = ("anyio", "selectors")
# Per process: test runs in parallel (other checkouts) must not share 127.0.<net>.* addresses.
_subnets = itertools.count(20 + os.getpid() % 200)


def fqdn(i: int, job: str = JOB) -> str:
    return f"{job}-{i}.{SERVICE}.{NAMESPACE}.svc.{ZONE}"


@pytest.fixture
def dns(tmp_path: Path) -> Iterator[ClusterDNS]:
    with ClusterDNS(tmp_path / "dns", zone=ZONE, listen="127.0.0.1") as server:
        yield server


@pytest.fixture
def driver(request: pytest.FixtureRequest) -> str:
    """The driver every agent is started with (``PEER_AGENT_DRIVER``); ``auto`` unless a test
    is parametrized over :data:`DRIVERS`."""
    return str(getattr(request, "param", "auto"))


@dataclass
class Agents:
    """Agent processes, each on its own 127.0.<net>.<i+1> address (so several can use one port)."""

    dns: ClusterDNS
    tmp: Path
    net: int = field(default_factory=lambda: next(_subnets) % 250)
    procs: list[subprocess.Popen[str]] = field(default_factory=list)
    published: dict[str, str] = field(default_factory=dict)
    driver: str = "auto"

    def address(self, i: int) -> str:
        return f"127.0.{self.net}.{i + 1}"

    def publish(self, i: int, job: str = JOB, address: str | None = None) -> None:
        """As Kubernetes does: the pod's own name, and its address among the Service's."""
        name = fqdn(i, job)
        self.published[name] = address or self.address(i)
        self.dns.set_a(name, [self.published[name]])
        self.dns.set_a(f"{SERVICE}.{NAMESPACE}.svc.{ZONE}", sorted(set(self.published.values())))

    def start(
        self,
        command: str,
        i: int,
        peers: int,
        *args: str,
        job: str = JOB,
        env: dict[str, str] | None = None,
        address: str | None = None,
        wrap: Sequence[str] = (),
        entry: Sequence[str] = ("-m", "agent"),
    ) -> subprocess.Popen[str]:
        """``wrap``: a command the agent runs under (e.g. ``unshare --pid --fork``); ``entry``:
        how Python starts it (``-c`` and a script that calls ``agent.__main__.main``)."""
        argv = [
            *wrap,
            sys.executable,
            *entry,
            command,
            "--peers",
            str(peers),
            "--index",
            str(i),
            "--hostname",
            f"{job}-{i}",
            "--service",
            SERVICE,
            "--namespace",
            NAMESPACE,
            "--dns-server",
            f"{self.dns.address}:{self.dns.port}",
            "--listen",
            address or self.address(i),
            *args,
        ]
        proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PEER_AGENT_DRIVER": self.driver, **(env or {})},
        )
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
            proc.communicate()


@pytest.fixture
def agents(dns: ClusterDNS, tmp_path: Path, driver: str) -> Iterator[Agents]:
    group = Agents(dns, tmp_path, driver=driver)
    try:
        yield group
    finally:
        group.stop_all()


def finish(proc: subprocess.Popen[str], timeout: float = 30) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def sigterm_until_gone(proc: subprocess.Popen[str]) -> int:
    """SIGTERM ``proc`` every millisecond until it has exited; how many were sent."""
    signals = 0
    while proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
            signals += 1
        time.sleep(0.001)  # the storm's pace, not a wait for an event
    return signals


def wait_for_line(proc: subprocess.Popen[str], text: str) -> list[str]:
    """Read the agent's stderr until a line containing ``text`` (bounded by the test's timeout)."""
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if text in line:
            return seen
    raise AssertionError(f"{text!r} never logged; got:\n{''.join(seen)}")
