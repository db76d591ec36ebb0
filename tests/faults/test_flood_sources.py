"""A flood of idle connections from a few addresses of its own against the agent's port (issue
21): the handshake bound is shared fairly between source addresses, so the flooders take their
own share and the real peers' handshakes still get through. Real sidecars on loopback.
"""

from __future__ import annotations

import socket
import subprocess
import time

import pytest

from agent.protocol.wire import Hello, Identity, Role, encode
from tests.faults.conftest import AgentProcess, Job, agent_argv, wait_port
from tests.support import junkflood
from tests.support.faultdns import FaultDNS

#: the flooding addresses, and the connections each keeps open (together past the bound, 256)
FLOODERS, EACH = 4, 200


def _flood(job: Job, sources: list[str]) -> subprocess.Popen[str]:
    """Silent connections held open to pod 0's agent port from ``sources`` (each one pod 0
    closes is opened again at once), until terminated; returns once 1,000 have been made."""
    argv = ["--target", f"{job.address(0)}:{job.port}", "--kind", "silent-hold"]
    argv += [arg for source in sources for arg in ("--source", source)]
    argv += ["--count", "10000000", "--concurrency", str(len(sources) * EACH)]
    return junkflood.start([*argv, "--deadline", "110"], made=1000)


def _from(source: str, job: Job, port: int) -> socket.socket:
    """A connection to pod 0's ``port`` from the loopback address ``source``."""
    sock = socket.create_connection((job.address(0), port), timeout=10, source_address=(source, 0))
    sock.settimeout(10)
    return sock


def _stranger(job: Job) -> bytes:
    return encode(Hello(Identity("another-job", "", 0, 1, job.port), Role.PROBE, "ab" * 16))


@pytest.mark.timeout(60)
def test_a_flood_from_one_address_does_not_cut_a_handshake_from_another(
    fault_dns: FaultDNS, processes: list[AgentProcess]
) -> None:
    """A sidecar serves at most 256 connections in their handshake. A peer connects from its
    address; before it has said hello, an address of its own opens 300 silent connections.
    The peer's connection is not dropped for them (it was: the one waiting longest went for each
    newcomer past the bound): its hello is answered. The flood's own oldest went instead, and a
    newcomer from a third address is answered too."""
    job = Job(fault_dns, 2)
    job.publish()
    agent = AgentProcess(agent_argv(job, "sidecar", 0))
    processes.append(agent)
    wait_port(job, 0)
    peer = _from(job.address(1), job, job.port)
    flood = [_from(job.address(60), job, job.port) for _ in range(300)]
    third = _from(job.address(61), job, job.port)  # accepted after every flood connection
    try:
        third.sendall(_stranger(job))
        assert b'"t":"hello"' in third.recv(4096)
        peer.sendall(_stranger(job))
        assert b'"t":"hello"' in peer.recv(4096), agent.stderr
    finally:
        for sock in (peer, third, *flood):
            sock.close()
    assert agent.stderr.count("in their handshake") == 1, agent.stderr
    assert f"the first came from {job.address(60)})" in agent.stderr, agent.stderr
    assert agent.stop() == 0, agent.stderr


@pytest.mark.timeout(120)
def test_a_few_flooding_addresses_do_not_keep_a_sidecar_job_from_releasing(
    fault_dns: FaultDNS, processes: list[AgentProcess]
) -> None:
    """Pod 0 of a sidecar Job of 12 (with a token: a handshake takes a round trip) listens; 4
    addresses DNS does not list then keep 200 silent connections each open to its agent port
    (800, past the 256 it serves in their handshake at once), each reopened as soon as it is
    dropped. Pods 1-11 start mid-flood, and every pod passes while the flood still goes on.
    The Job-level check of the test above, not its proof: on this shared 2-core machine it
    passed before the fix too (7.0 s after the members started; after it, 2.9 s and 6.0 s);
    a review once saw such a Job release nobody in 60 s."""
    job = Job(fault_dns, 12, timeout="100s")
    job.publish()
    token = ("--token=flood-test-token",)
    agents = [AgentProcess(agent_argv(job, "sidecar", 0, *token))]
    processes.extend(agents)
    wait_port(job, 0)
    flood = _flood(job, [job.address(job.peers + 50 + k) for k in range(FLOODERS)])
    try:
        started = time.monotonic()
        agents += [AgentProcess(agent_argv(job, "sidecar", i, *token)) for i in range(1, job.peers)]
        processes.extend(agents[1:])
        took = max(agent.wait_line("serving /readyz", timeout=60) for agent in agents) - started
        assert flood.poll() is None, "the barrier passed only once the flood had stopped"
    finally:
        flood.terminate()
        flood.communicate(timeout=30)
    assert agents[0].stderr.count("in their handshake") == 1, agents[0].stderr
    for agent in agents:
        assert agent.stop() == 0, agent.stderr
        assert "with a bug" not in agent.stderr, agent.stderr
    print(f"released {took:.1f} s after the members started, mid-flood")
