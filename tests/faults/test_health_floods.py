"""A flood of idle connections against a sidecar's health port (issue 21): the bound on
connections without a whole request yet (32) is shared fairly between source addresses, so a
few flooding addresses cannot cut kubelet's probe or a local `peer-agent barrier NAME` client.
Real sidecars, real clients, on loopback.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from tests.faults.conftest import ROOT, AgentProcess, Job, agent_argv
from tests.support import junkflood
from tests.support.faultdns import FaultDNS

#: the flooding addresses, and the connections each keeps open (together past the bound, 32)
FLOODERS, EACH = 8, 12
CLIENTS = 16


def _from(source: str, job: Job) -> socket.socket:
    """A connection to pod 0's health port from the loopback address ``source``."""
    where = (job.address(0), job.port + 1)
    sock = socket.create_connection(where, timeout=10, source_address=(source, 0))
    sock.settimeout(10)
    return sock


def _answer(sock: socket.socket) -> bytes:
    got = b""
    while data := sock.recv(4096):
        got += data
    return got


def _sidecar(job: Job, processes: list[AgentProcess]) -> AgentProcess:
    agent = AgentProcess(agent_argv(job, "sidecar", 0))
    processes.append(agent)
    agent.wait_line("serving /readyz")
    return agent


@pytest.mark.timeout(60)
def test_idle_connections_from_one_address_do_not_cut_a_client_from_another(
    fault_dns: FaultDNS, processes: list[AgentProcess]
) -> None:
    """A client of a named barrier connects from its address; before its request is sent, an
    address of its own opens 40 idle connections to the health port (past the 32 served
    without a whole request). The client is not dropped for them (it was, as the connection
    waiting longest, and `peer-agent barrier` said "no sidecar answers"): its barrier passes."""
    job = Job(fault_dns, 1)
    job.publish()
    agent = _sidecar(job, processes)
    client = _from(job.address(1), job)
    flood = [_from(job.address(60), job) for _ in range(40)]
    try:
        probe = _from(job.address(61), job)  # accepted after every flood connection
        probe.sendall(b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _answer(probe).startswith(b"HTTP/1.1 200")
        client.sendall(b"POST /barrier/ckpt HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        assert _answer(client).startswith(b"HTTP/1.1 200"), agent.stderr
    finally:
        for sock in (client, *flood):
            sock.close()
    assert f"the first came from {job.address(60)})" in agent.stderr, agent.stderr
    assert agent.stop() == 0, agent.stderr


@pytest.mark.timeout(60)
def test_answers_never_read_hold_at_most_their_bound_of_descriptors(
    fault_dns: FaultDNS, processes: list[AgentProcess]
) -> None:
    """An address sends 200 whole requests to a sidecar's health port, one a connection, and
    never reads the answers nor closes. Each answered connection lingers (up to 1 s) for the
    client to close: they are bounded (32), the address holding the most losing its oldest, so
    the sidecar holds at most that many more descriptors, not one a request (it held 200)."""
    job = Job(fault_dns, 1)
    job.publish()
    agent = _sidecar(job, processes)
    fds = f"/proc/{agent.proc.pid}/fd"
    before = len(os.listdir(fds))
    flood = [_from(job.address(60), job) for _ in range(200)]
    try:
        for sock in flood:
            sock.sendall(b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n")
        last = _from(job.address(61), job)  # accepted after every flood connection
        last.sendall(b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n")
        assert last.recv(4096).startswith(b"HTTP/1.1 200")
        during = len(os.listdir(fds))
        last.close()
    finally:
        for sock in flood:
            sock.close()
    assert during - before <= 32 + 8, (before, during)  # was 185 more
    assert agent.stop() == 0, agent.stderr


def _flood(job: Job) -> subprocess.Popen[str]:
    """Idle connections held open to pod 0's health port from ``FLOODERS`` addresses DNS does
    not list (each one closed is opened again at once), until terminated."""
    argv = ["--target", f"{job.address(0)}:{job.port + 1}", "--kind", "silent-hold"]
    argv += [arg for k in range(FLOODERS) for arg in ("--source", job.address(60 + k))]
    argv += ["--count", "10000000", "--concurrency", str(FLOODERS * EACH)]
    return junkflood.start([*argv, "--deadline", "100"], made=1000)


@pytest.mark.timeout(120)
def test_barrier_clients_are_answered_while_a_few_addresses_flood_the_health_port(
    fault_dns: FaultDNS, processes: list[AgentProcess]
) -> None:
    """8 addresses DNS does not list keep 12 idle connections each open to a sidecar's health
    port (96, past the 32 it serves without a whole request), reopening each as soon as it is
    dropped. Meanwhile 16 `peer-agent barrier ckpt` clients of that pod ask at once: every one
    is answered and passes. The process-level check of the test above (on this machine it
    passed before the fix too, with 40 clients; a review once saw 30 of 40 fail)."""
    job = Job(fault_dns, 1)
    job.publish()
    agent = _sidecar(job, processes)
    flood = _flood(job)
    argv = ["barrier", "ckpt", "--listen", job.address(0), "--health-port", str(job.port + 1)]
    clients = [
        subprocess.Popen(
            [sys.executable, "-m", "agent", *argv, "--timeout", "60s"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(CLIENTS)
    ]
    try:
        results = [client.communicate(timeout=80) for client in clients]
        assert flood.poll() is None, "the clients passed only once the flood had stopped"
    finally:
        for proc in (*clients, flood):
            proc.kill()
            proc.communicate()
    assert [client.returncode for client in clients] == [0] * CLIENTS, results
    assert agent.stop() == 0, agent.stderr
