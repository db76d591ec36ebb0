"""Named barriers must not multiply what a sidecar holds for outsiders (an outside review's
severe finding): real sidecars on loopback, a DNS server, an outsider at 16 addresses DNS does
not list opening member sessions to every barrier instance of the coordinator.

The held-session bound (4 a source address, 4 a claimed pod, 256 in all) was kept per barrier
instance: with 64 names passed, 16 sessions to each of pod 0's 65 instances took it from 270
descriptors to its limit of 1,024 in 4 s; ``/livez`` stopped answering, a new named barrier
timed out, and the log took 6,493 warnings naming the same 16 addresses. It is one bound for
the process now (``agent.core.heldshare``); the pure version is tests/pure/test_heldshare.py.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import http.client
import json
import os
import resource
import socket

import pytest

from agent.commands.sidecar import HEALTH_FDS
from agent.io.limits import barriers_covered, fds_needed
from agent.protocol.instance import instance_id
from agent.protocol.wire import Hello, Identity, Role, encode, named_barrier
from tests.faults.conftest import AgentProcess, Job, agent_argv, wait_port
from tests.faults.test_admission import _open_after
from tests.support.faultdns import FaultDNS

pytestmark = pytest.mark.timeout(90)

PEERS = 5
NAMES = [f"ckpt-{n}" for n in range(8)]
#: job.address(OUTSIDER + k): 16 addresses of the job's loopback net that DNS never lists
OUTSIDER, SOURCES = 20, 16
#: held sessions claiming one pod, in the whole process (``agent.core.heldshare.HELD``)
HELD_PER_INDEX = 4


def _nofile_1024() -> None:
    """A usual container's limit of open files, hard as well: 1024."""
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))


def _post(job: Job, i: int, path: str, timeout: float = 30) -> tuple[int, str]:
    """A request to pod ``i``'s health port from this machine (loopback: from its pod)."""
    conn = http.client.HTTPConnection(job.address(i), job.port + 1, timeout=timeout)
    try:
        conn.request("POST" if path.startswith("/barrier/") else "GET", path)
        reply = conn.getresponse()
        return reply.status, reply.read().decode()
    finally:
        conn.close()


def _barrier_on_every_pod(job: Job, name: str) -> list[int]:
    """Every pod's client asks for barrier ``name`` at once: each one's HTTP status."""
    with concurrent.futures.ThreadPoolExecutor(PEERS) as pool:
        asked = [pool.submit(_post, job, i, f"/barrier/{name}?timeout=20s") for i in range(PEERS)]
        return [future.result()[0] for future in asked]


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _outsider_sessions(job: Job) -> list[socket.socket]:
    """16 member sessions to each of pod 0's barrier instances (the start barrier and every
    name), from 16 addresses DNS does not list, claiming pods 1-4 in turn, each answered."""
    conns: list[socket.socket] = []
    for barrier in ["", *(named_barrier(name) for name in NAMES)]:
        for k in range(16):
            index = 1 + k % (PEERS - 1)
            who = Identity(job.job, job.uid, index, PEERS, job.port, instance_id(2**62, k))
            if barrier:
                who = dataclasses.replace(who, barrier=barrier)
            source = (job.address(OUTSIDER + k % SOURCES), 0)
            conn = socket.create_connection((job.address(0), job.port), 5, source)
            conns.append(conn)
            conn.sendall(encode(Hello(who, Role.MEMBER, "ab" * 16)))
            assert conn.recv(4096), "pod 0 answers no more"
    return conns


def _warned_of(pod: AgentProcess, outsiders: set[str]) -> list[str]:
    """The addresses pod 0's warnings name, once every outsider is among them: each is named
    at a fresh DNS answer after its contact, which may come after the test's last barrier."""
    warned: list[str] = []
    for count in range(1, len(outsiders) + 1):
        pod.wait_line("which DNS does not list", 30, count=count)
        warned = [
            address
            for record in map(json.loads, pod.stderr.splitlines())
            if record["level"] == "warning" and "which DNS does not list" in record["msg"]
            for address in record["addresses"]
        ]
        if outsiders <= set(warned):
            break
    return warned


def test_an_outsider_holding_sessions_to_every_named_barrier_is_held_once_for_the_process(
    fault_dns: FaultDNS, processes: list[AgentProcess]
) -> None:
    """5 sidecars (pod 0 at 1,024 open files) pass 8 named barriers. An outsider at 16
    unlisted addresses opens 16 member sessions claiming pods 1-4 to each of pod 0's 9
    barrier instances (144). Pod 0 holds at most 4 claiming each pod in all (16), not 16 an
    instance; its descriptors stay within its budget; ``/livez`` answers; a new named barrier
    passes on every pod; and each address is warned of once, not once an instance."""
    job = Job(fault_dns, PEERS)
    job.publish()
    json_log = agent_argv(job, "sidecar", 0, "--log-format", "json")
    pods = [AgentProcess(json_log, preexec_fn=_nofile_1024)]
    pods += [AgentProcess(agent_argv(job, "sidecar", i)) for i in range(1, PEERS)]
    processes.extend(pods)
    for i in range(PEERS):
        wait_port(job, i)
        pods[i].wait_line("staying up")
    for name in NAMES:
        assert _barrier_on_every_pod(job, name) == [200] * PEERS, pods[0].stderr
    pid = pods[0].proc.pid
    before = _fds(pid)
    flood = _outsider_sessions(job)
    try:
        held = _open_after(flood, 4 * HELD_PER_INDEX)
        during = _fds(pid)
        livez = _post(job, 0, "/livez", timeout=5)[0]
        after = _barrier_on_every_pod(job, "after")
    finally:
        for conn in flood:
            conn.close()
    assert len(flood) == 16 * (1 + len(NAMES))
    assert held <= 4 * HELD_PER_INDEX, held  # was 16 an instance: 144
    assert during - before <= 4 * HELD_PER_INDEX + 8, (before, during)
    assert during < fds_needed(PEERS) <= 1024, (during, fds_needed(PEERS))
    assert livez == 200 and after == [200] * PEERS, pods[0].stderr
    outsiders = {job.address(OUTSIDER + k) for k in range(SOURCES)}
    warned = _warned_of(pods[0], outsiders)
    assert sorted(warned) == sorted(outsiders), warned  # each once (was once an instance)
    assert "failed: Too many open files" not in pods[0].stderr
    covered = max(0, barriers_covered(PEERS, 1024, HEALTH_FDS) - 1)
    assert f"covers {covered} named barriers" in pods[0].stderr
