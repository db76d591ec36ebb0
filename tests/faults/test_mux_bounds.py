"""The shared port's bound (sidecar, exit and named barriers: agent.io.mux) counts only the
connections still proving who they are: a flood of idle connections from an address DNS does
not list never cuts an established member session, and the end of a barrier instance is no bug
(issue 21, hole 2). Real sidecars and clients on loopback.
"""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from agent.protocol.wire import Hello, Identity, Role, encode
from tests.faults.conftest import ROOT, AgentProcess, Job, agent_argv, wait_port
from tests.support.faultdns import FaultDNS

pytestmark = pytest.mark.timeout(60)


def _answered(job: Job, i: int) -> None:
    """A hello of another job to pod ``i``, answered: connections are accepted in order."""
    stranger = Identity("another-job", "", 0, 1, job.port)
    with socket.create_connection((job.address(i), job.port), timeout=10) as conn:
        conn.sendall(encode(Hello(stranger, Role.PROBE, "ab" * 16)))
        assert b'"t":"hello"' in conn.recv(4096)


def _sessions(log: str) -> int:
    """The sessions count of the start barrier's release line (``… 1 sessions, …``)."""
    line = next(line for line in log.splitlines() if "barrier released" in line)
    for part in line.rsplit("(", 1)[1].rstrip(")\n").split(", "):
        number, _, name = part.partition(" ")
        if name == "sessions":
            return int(number)
    return 0


def test_idle_connections_from_an_unlisted_address_never_cut_a_sidecars_session(
    fault_dns: FaultDNS, processes: list[AgentProcess]
) -> None:
    """Sidecars 0 and 1 wait for pod 2, pod 1's session to the coordinator open. A process at
    an address DNS does not list opens 400 connections to the coordinator's port and says
    nothing (more than the 256 it serves in their handshake at once). The silent ones are
    dropped, the session is not: when pod 2 comes, pod 1 passes on the one session it opened
    (it used to be cut, as the connection "waiting longest", and dialled again and again). The
    coordinator says once that it drops connections."""
    job = Job(fault_dns, 3)
    job.publish(0, 1)
    agents = [AgentProcess(agent_argv(job, "sidecar", i)) for i in (0, 1)]
    processes.extend(agents)
    agents[1].wait_line(f"reached {job.fqdn(0)}")
    agents[0].wait_line(f"reached {job.fqdn(1)}")
    idle = [socket.create_connection((job.address(0), job.port)) for _ in range(400)]
    try:
        _answered(job, 0)  # so every idle one before it has been accepted
        job.publish(2)
        agents.append(AgentProcess(agent_argv(job, "sidecar", 2)))
        processes.append(agents[-1])
        for agent in agents:
            agent.wait_line("serving /readyz")
    finally:
        for conn in idle:
            conn.close()
    assert _sessions(agents[1].stderr) == 1, agents[1].stderr
    assert _sessions(agents[2].stderr) == 1, agents[2].stderr
    assert agents[0].stderr.count("in their handshake") == 1, agents[0].stderr
    for agent in agents:
        assert agent.stop() == 0, agent.stderr
        assert "with a bug" not in agent.stderr, agent.stderr


def _client(job: Job, i: int, name: str, *more: str) -> subprocess.Popen[str]:
    argv = ["barrier", name, "--listen", job.address(i), "--health-port", str(job.port + 1)]
    return subprocess.Popen(
        [sys.executable, "-m", "agent", *argv, *more],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_named_barrier_that_times_out_with_sessions_open_reports_no_bug(
    fault_dns: FaultDNS, processes: list[AgentProcess]
) -> None:
    """Pods 0 and 1 ask for `ckpt`, pod 2 never does; pod 0's client gives it 2 s. Its barrier
    times out with pod 1's member session (and probes) open on the shared port: those
    connections end with the barrier, and the sidecar reports no "connection handler(s) failed
    with a bug" (a ClosedResourceError used to be counted as one for each)."""
    job = Job(fault_dns, 3)
    job.publish()
    sidecars = [AgentProcess(agent_argv(job, "sidecar", i)) for i in range(3)]
    processes.extend(sidecars)
    for agent in sidecars:
        agent.wait_line("serving /readyz")
    patient = _client(job, 1, "ckpt", "--timeout", "30s")
    sidecars[1].wait_line("barrier ckpt: topology")
    short = _client(job, 0, "ckpt", "--timeout", "2s")
    _, err = short.communicate(timeout=30)
    assert short.returncode == 3, err
    patient.kill()
    patient.communicate()
    for agent in sidecars:
        assert agent.stop() == 0, agent.stderr
        assert "with a bug" not in agent.stderr, agent.stderr


#: an agent whose handshake bound is 8 (wherever this version keeps it), then the CLI
_BOUND_8 = """
import sys
import agent.io
for name in ("limits", "mux", "contacts"):
    module = getattr(__import__(f"agent.io.{name}").io, name)
    if hasattr(module, "MAX_HANDSHAKING"):
        module.MAX_HANDSHAKING = 8
from agent.commands.cli import main
raise SystemExit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("mode", ["sidecar", "exit-barrier"])
def test_a_job_of_more_pods_than_the_bound_releases(
    fault_dns: FaultDNS, processes: list[AgentProcess], mode: str
) -> None:
    """A Job of 12 pods whose agents serve at most 8 connections in their handshake: the
    coordinator holds 11 member sessions on its shared port, more than the bound, and keeps
    every one; all pass (a Job of more pods than the bound, 256, never released: its sessions
    counted against the bound for their whole life, and cut one another). The same with 300
    pods and the shipped bound is ``make bench``'s case ``n300`` (``bench/loopscale.py``)."""
    job = Job(fault_dns, 12)
    job.publish()
    tail = ["--exit-barrier", "--", "true"] if mode == "exit-barrier" else []
    command = "run" if tail else "sidecar"
    agents = [
        AgentProcess(agent_argv(job, command, i, *tail), python_args=["-c", _BOUND_8])
        for i in range(job.peers)
    ]
    processes.extend(agents)
    if command == "sidecar":
        for agent in agents:
            agent.wait_line("serving /readyz", timeout=40)
        assert [agent.stop() for agent in agents] == [0] * job.peers
    else:
        assert [agent.finish() for agent in agents] == [0] * job.peers, agents[0].stderr
        assert all("exit barrier: barrier released" in agent.stderr for agent in agents)
    assert [_sessions(agent.stderr) for agent in agents[1:]] == [1] * (job.peers - 1)
    assert not any("with a bug" in agent.stderr for agent in agents)


def _flood(job: Job, port: int, count: int) -> subprocess.Popen[str]:
    """``count`` silent connections held open to pod 0's ``port`` from an address DNS does not
    list (each one pod 0 closes is opened again), until terminated: ``bench.loopscale``'s flood,
    smaller."""
    argv = ["--target", f"{job.address(0)}:{port}", "--source", job.address(job.peers + 50)]
    more = ["--kind", "silent-hold", "--count", "1000000", "--concurrency", str(count)]
    return subprocess.Popen(
        [sys.executable, "-m", "tests.support.junkflood", *argv, *more, "--deadline", "110"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.timeout(120)
def test_a_flood_while_a_job_above_the_bound_comes_up_cuts_no_session_and_no_waiter(
    fault_dns: FaultDNS, processes: list[AgentProcess]
) -> None:
    """`make bench`'s flood case (300 sidecars, 1,000 connections) in small: 12 sidecars whose
    handshake bound is 8. From the moment pod 0 listens, an address DNS does not list holds 40
    silent connections to its agent port and 40 to its health port (over both bounds, 8 and
    32), and pod 0's workload waits in `peer-agent barrier ckpt` from before its start barrier
    passed. Every pod passes on the one session it opened, and once every pod's workload asks,
    every waiter passes, pod 0's included."""
    job = Job(fault_dns, 12)
    job.publish()
    first = AgentProcess(agent_argv(job, "sidecar", 0), python_args=["-c", _BOUND_8])
    processes.append(first)
    wait_port(job, 0)
    floods = [_flood(job, job.port, 40), _flood(job, job.port + 1, 40)]
    waiters = [_client(job, 0, "ckpt", "--timeout", "100s")]
    try:
        for i in range(1, job.peers):
            processes.append(
                AgentProcess(agent_argv(job, "sidecar", i), python_args=["-c", _BOUND_8])
            )
        for agent in processes:
            agent.wait_line("serving /readyz", timeout=60)
        waiters += [_client(job, i, "ckpt", "--timeout", "60s") for i in range(1, job.peers)]
        results = [waiter.communicate(timeout=70) for waiter in waiters]
    finally:
        for proc in (*floods, *waiters):
            proc.kill()
            proc.communicate()
    assert [w.returncode for w in waiters] == [0] * job.peers, results
    assert [_sessions(agent.stderr) for agent in processes[1:]] == [1] * (job.peers - 1)
    assert first.stderr.count("in their handshake") == 1, first.stderr
    for agent in processes:
        assert agent.stop() == 0, agent.stderr
        assert "with a bug" not in agent.stderr, agent.stderr
