"""Regressions for inputs that once ended an agent, each driven as real bytes into real agent
processes on loopback: the agent lives on, and the barrier still passes.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections import Counter
from collections.abc import Iterator

import pytest

from agent.runner import identity_of
from agent.wire import Hello, encode
from tests.faults.conftest import AgentProcess, Job, Record, agent_argv, wait_port
from tests.support.faultdns import FaultDNS

pytestmark = pytest.mark.timeout(60)

#: ``printf '{"v":1,"t":[]}\n' | nc POD 29300`` ended any agent with TypeError (exit 1)
CRASHERS = [
    b'{"v":1,"t":[]}\n',
    b'{"v":1,"t":{}}\n',
    b'{"v":true,"t":"hello"}\n',
    b'{"v":1,"t":"hello","t":"ack"}\n',
    b'{"v":1,"t":"abort","reason":NaN}\n',
]


def _say(address: str, port: int, line: bytes) -> bytes:
    """What ``printf LINE | nc ADDRESS PORT`` does; returns what came back before the close."""
    got = b""
    with socket.create_connection((address, port), timeout=10) as sock:
        sock.sendall(line)
        sock.shutdown(socket.SHUT_WR)
        while chunk := sock.recv(4096):
            got += chunk
    return got


@pytest.mark.parametrize("command", ["wait", "sidecar"])
def test_one_line_of_type_confused_json_ends_no_agent(
    fault_dns: FaultDNS, processes: list[AgentProcess], record: Record, command: str
) -> None:
    """Each line is sent to both agents of a 2-pod job while pod 1 is not yet published; each
    agent closes that connection only, and once pod 1 is published the barrier passes."""
    job = Job(fault_dns, 2)
    job.publish(0)
    agents = [AgentProcess(agent_argv(job, command, i)) for i in range(2)]
    processes.extend(agents)
    for i in range(2):
        wait_port(job, i)
    for line in CRASHERS:
        for i in range(2):
            assert _say(job.address(i), job.port, line) == b""  # closed, nothing said
    for agent in agents:
        assert agent.proc.poll() is None, agent.stderr
    job.publish(1)
    for agent in agents:
        agent.wait_line("barrier released")
    for agent in agents:
        code = agent.finish() if command == "wait" else agent.stop()
        assert code == 0, agent.stderr
        assert "Traceback" not in agent.stderr and "internal error" not in agent.stderr
    record(tries=len(CRASHERS) * 2)


class _HostileCoordinator:
    """Listens where pod 0 is published: answers a probe with ``line``; completes a member's
    handshake (no token) and then sends ``line`` in the session."""

    def __init__(self, job: Job, line: bytes) -> None:
        self.job, self.line = job, line
        self.served: Counter[str] = Counter()
        self.enough = threading.Event()
        self._sock = socket.create_server((job.address(0), job.port))
        self._sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> _HostileCoordinator:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)
        self._sock.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            with conn, contextlib.suppress(OSError):
                conn.settimeout(5)
                self._answer(conn)

    def _answer(self, conn: socket.socket) -> None:
        hello = json.loads(conn.makefile("rb").readline())
        if hello["role"] == "member":
            me = identity_of(self.job.config(0))
            conn.sendall(encode(Hello(me, "reply", "00" * 16)))
        conn.sendall(self.line)
        self.served[hello["role"]] += 1
        if self.served["probe"] >= 2 and self.served["member"] >= 2:
            self.enough.set()


@pytest.fixture(params=CRASHERS[:2], ids=["type-list", "type-object"])
def hostile(request: pytest.FixtureRequest, fault_dns: FaultDNS) -> Iterator[_HostileCoordinator]:
    job = Job(fault_dns, 2)
    job.publish()
    with _HostileCoordinator(job, request.param) as server:
        yield server


def test_a_hostile_reply_to_a_probe_or_a_session_ends_no_agent(
    hostile: _HostileCoordinator, processes: list[AgentProcess], record: Record
) -> None:
    """Whatever listens at a listed address can answer: the decoder that reads a peer's hello
    also reads probe replies and the coordinator's messages. Pod 1 probes the impostor and holds
    sessions with it, each answered with the line; then the real pod 0 starts in its place and
    the barrier passes."""
    job = hostile.job
    member = AgentProcess(agent_argv(job, "wait", 1))
    processes.append(member)
    assert hostile.enough.wait(30), (hostile.served, member.stderr)
    assert member.proc.poll() is None, member.stderr
    hostile.__exit__()
    coordinator = AgentProcess(agent_argv(job, "wait", 0))
    processes.append(coordinator)
    for agent in (member, coordinator):
        assert agent.finish() == 0, agent.stderr
        assert "Traceback" not in agent.stderr
    record(tries=sum(hostile.served.values()))
