"""The shared port at scale: a sidecar Job and a ``run --exit-barrier`` Job of 300 real agents on
loopback, over a real unbound, release (issue 21, hole 2: the multiplexer's bound of 256 once
counted every connection for its whole life, so beyond 256 pods the coordinator cut its own
members' sessions and never released).

Heavy (300 Python processes on the machine): run it under ``flock /tmp/peer-agent-heavy.lock``.
"""

from __future__ import annotations

import os
import random
import resource
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.conftest import AgentProcess, Record
from tests.harness.clusterdns import ClusterDNS

N = 300
ZONE, SERVICE, NAMESPACE, JOB = "cluster.local", "scale-svc", "default", "scale-job"
SERVICE_FQDN = f"{SERVICE}.{NAMESPACE}.svc.{ZONE}"


def _address(net: int, i: int) -> str:
    """Pod ``i``'s loopback address: 127.<net>.<i // 250>.<i % 250 + 1> (300 need two /24s)."""
    return f"127.{net}.{i // 250}.{i % 250 + 1}"


@pytest.fixture
def dns(tmp_path: Path) -> Iterator[ClusterDNS]:
    with ClusterDNS(tmp_path / "dns", zone=ZONE, listen="127.0.0.1") as server:
        yield server


class _Job:
    def __init__(self, dns: ClusterDNS, processes: list[AgentProcess]) -> None:
        self.dns, self.processes = dns, processes
        self.net = 100 + os.getpid() % 50
        self.port = random.Random().randrange(30000, 40000, 2)
        records = {f"{JOB}-{i}.{SERVICE_FQDN}": [f"A {_address(self.net, i)}"] for i in range(N)}
        records[SERVICE_FQDN] = [f"A {_address(self.net, i)}" for i in range(N)]
        dns.set_many(records)

    def start(self, i: int, command: str, *extra: str) -> AgentProcess:
        argv = [
            command,
            "--peers",
            str(N),
            "--index",
            str(i),
            "--hostname",
            f"{JOB}-{i}",
            "--service",
            SERVICE,
            "--namespace",
            NAMESPACE,
            "--dns-server",
            f"{self.dns.address}:{self.dns.port}",
            "--listen",
            _address(self.net, i),
            "--port",
            str(self.port),
            "--timeout",
            "240s",
            *extra,
        ]
        agent = AgentProcess(argv)
        self.processes.append(agent)
        return agent


def _cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@pytest.mark.timeout(600)
def test_a_sidecar_job_of_300_pods_releases(
    dns: ClusterDNS, processes: list[AgentProcess], record: Record
) -> None:
    """300 sidecars: every one reports ready (its barrier released), and no member's session
    was cut and dialled again (each member's release line counts one session)."""
    job = _Job(dns, processes)
    cpu = _cpu_of_children()
    started = time.monotonic()
    agents = [job.start(i, "sidecar", "--health-port", str(job.port + 1)) for i in range(N)]
    spawned = time.monotonic() - started
    released = max(agent.wait_line("serving /readyz", timeout=300) for agent in agents)
    for agent in agents:
        assert agent.stop(signal.SIGTERM) == 0, agent.stderr[-3000:]
    cpu = _cpu_of_children() - cpu
    sessions = [_count(agent.stderr, "sessions") for agent in agents[1:]]
    assert sessions == [1] * (N - 1), sorted(set(sessions))
    assert not any("with a bug" in agent.stderr for agent in agents)
    record(
        pods=N,
        spawned_s=round(spawned, 1),
        released_after_last_spawn_s=round(released - started - spawned, 2),
        cpu_s=round(cpu, 1),
    )


@pytest.mark.timeout(600)
def test_an_exit_barrier_job_of_300_pods_leaves_together(
    dns: ClusterDNS, processes: list[AgentProcess], record: Record
) -> None:
    """300 agents run a workload that exits at once, then hold the exit barrier: every one
    passes both barriers and exits with its workload's code."""
    job = _Job(dns, processes)
    cpu = _cpu_of_children()
    started = time.monotonic()
    agents = [job.start(i, "run", "--exit-barrier", "--", "true") for i in range(N)]
    spawned = time.monotonic() - started
    codes = [agent.finish(timeout=300) for agent in agents]
    ended = time.monotonic() - started
    cpu = _cpu_of_children() - cpu
    assert codes == [0] * N, [a.stderr[-2000:] for a, c in zip(agents, codes, strict=True) if c]
    assert all("exit barrier: barrier released" in agent.stderr for agent in agents)
    assert not any("with a bug" in agent.stderr for agent in agents)
    record(
        pods=N,
        spawned_s=round(spawned, 1),
        all_exited_after_last_spawn_s=round(ended - spawned, 2),
        cpu_s=round(cpu, 1),
    )


def _count(log: str, what: str) -> int:
    """The number before ``what`` in the (start barrier's) release line: ``… 1 sessions, …``."""
    line = next(line for line in log.splitlines() if "barrier released" in line)
    for part in line.rsplit("(", 1)[1].rstrip(")").split(", "):
        number, _, name = part.partition(" ")
        if name == what:
            return int(number)
    return 0
