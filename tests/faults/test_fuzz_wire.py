"""Fuzzing through the real path, in process: hostile bytes into listening agents (bytes → channel
→ decode → handshake → session and probe handlers), hostile replies into an agent's probe and a
member's coordinator session, and hostile HTTP into the health server.

Every JSON type in every field of every message, repeated keys, wrong versions, lines split at
any byte, oversize lines and invalid UTF-8 (``tests/support/hostile.py``). The agents must neither
end nor report a bug, and pass their barrier afterwards. Budgets in multiples of the Hypothesis
profile's (``tests/support/budget.py``) keep this part of ``make test`` to seconds; ``make fuzz``
runs the coverage-guided target.
"""

from __future__ import annotations

import collections
import random
import re
import socket
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.from_thread
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.commands import health
from agent.config.model import Probe, ProbeKind
from agent.config.parse import build_config
from agent.core.inputs import ProbeResult, Received
from agent.core.log import LogLine
from agent.core.roles import Member
from agent.errors import WireError
from agent.io.channel import HandshakeFailed, client_handshake
from agent.io.probes import connect, probe
from agent.io.resolver import Resolution
from agent.io.runner import identity_of, serve_and_wait
from agent.io.sessions import Sessions
from agent.io.supervisor import Supervisor
from agent.protocol.wire import Hello, Identity, Role, encode
from agent.topology.podfiles import PodFacts
from tests.faults.conftest import Job, Pod, Record, agent_deps, wait_port
from tests.support.budget import budget
from tests.support.faultdns import FaultDNS
from tests.support.hostile import http_requests, split, wire_lines

pytestmark = [pytest.mark.usefixtures("fast_progress"), pytest.mark.timeout(120)]
TOKEN = b"fuzzed but secret"


def _budget(times: float) -> settings:
    return settings(
        max_examples=budget(times),
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
        database=None,
    )


def _exchange(address: str, port: int, pieces: list[bytes]) -> bytes:
    """Send ``pieces`` one by one, half-close, and read until the other side closes."""
    got = b""
    with socket.create_connection((address, port), timeout=10) as sock:
        try:
            for piece in pieces:
                sock.sendall(piece)
            sock.shutdown(socket.SHUT_WR)
            while chunk := sock.recv(65536):
                got += chunk
        except OSError:  # reset, broken pipe, not connected
            pass  # dropped before all was sent or read: what the agent does with garbage
    return got


# --- listening agents -----------------------------------------------------------------------------
@dataclass
class _Live:
    """Pod 0 of two jobs (one with a token) running in a thread; pod 1 of each not yet."""

    portal: anyio.from_thread.BlockingPortal
    jobs: list[Job]
    pods: list[Pod] = field(default_factory=list)
    runs: list[Future[Any]] = field(default_factory=list)

    def start(self, job: Job, i: int) -> None:
        values = {"token": TOKEN.decode()} if job is self.jobs[1] else {}
        pod = Pod(i, job.config(i, **values))

        async def run() -> None:
            try:
                # its own randomness: hypothesis, drawing meanwhile, watches the global one
                deps = agent_deps(rand=random.Random().random)
                pod.outcome = await serve_and_wait(pod.config, report=pod.report, deps=deps)
            except Exception as exc:
                pod.error = exc

        self.pods.append(pod)
        self.runs.append(self.portal.start_task_soon(run))

    def alive(self) -> None:
        for pod, run in zip(self.pods, self.runs, strict=True):
            assert not run.done(), (pod.error, pod.messages())
            assert not [e for e in pod.events if e.kind == "bug"], pod.messages()


@pytest.fixture
def live(fault_dns: FaultDNS) -> Iterator[_Live]:
    with FaultDNS() as other_dns, anyio.from_thread.start_blocking_portal() as portal:
        jobs = [Job(fault_dns, 2), Job(other_dns, 2)]  # a DNS each: one Service name
        for job in jobs:
            job.publish()
        agents = _Live(portal, jobs)
        for job in jobs:
            agents.start(job, 0)
        for job in jobs:
            wait_port(job, 0)
        try:
            yield agents
        finally:
            for run in agents.runs:
                run.cancel()


def test_hostile_lines_into_listening_agents(live: _Live, record: Record) -> None:
    """Up to three lines a connection (a hello, then what a session or a proof would carry),
    split anywhere, into a coordinator without and one with a token. Each connection ends;
    neither agent ends or reports a bug; then pod 1 of each job starts and both barriers pass."""
    tries = 0

    @_budget(10)
    @given(data=st.data(), secured=st.booleans(), count=st.integers(1, 3))
    def one(data: st.DataObject, secured: bool, count: int) -> None:
        nonlocal tries
        job = live.jobs[secured]
        me = identity_of(job.config(1))
        stream = b"".join(data.draw(wire_lines(me)) for _ in range(count))
        _exchange(job.address(0), job.port, data.draw(split(stream)))
        live.alive()
        tries += 1

    one()
    for job in live.jobs:
        live.start(job, 1)
    with anyio.from_thread.start_blocking_portal():
        for run in live.runs:
            run.result(timeout=30)
    assert all(p.outcome is not None and p.error is None for p in live.pods), [
        (p.error, p.messages()) for p in live.pods
    ]
    record(tries=tries)


# --- hostile replies: a probe, a member's coordinator session ------------------------------------
@contextmanager
def _impostor(listener: socket.socket, pieces: list[bytes]) -> Iterator[None]:
    """Serve one connection on ``listener``: read a hello, send ``pieces``, half-close, read
    until the client closes."""

    def serve() -> None:
        listener.settimeout(10)
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(10)
            try:
                buffered = b""
                while b"\n" not in buffered and (chunk := conn.recv(4096)):
                    buffered += chunk
                for piece in pieces:
                    conn.sendall(piece)
                conn.shutdown(socket.SHUT_WR)
                while conn.recv(4096):
                    pass
            except OSError:
                pass  # the client gave up on us: that is its right

    with anyio.from_thread.start_blocking_portal() as portal:
        done = portal.start_task_soon(anyio.to_thread.run_sync, serve)
        yield
        done.result(timeout=15)


def _me(index: int, port: int) -> Identity:
    return Identity("example-job", "", index, 2, port, "ffffffffffffffff-ffffffff")


@pytest.mark.asyncio
@_budget(5)
@given(data=st.data(), secured=st.booleans(), target=st.sampled_from([0, None]))
async def test_hostile_replies_to_a_probe(
    data: st.DataObject, secured: bool, target: int | None
) -> None:
    """The probe reads whatever answers at a listed address: it ends in a ProbeResult."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]  # the identities' port: a proper reply passes
        pieces = data.draw(wire_lines(_me(0, port)).flatmap(split))
        with _impostor(listener, pieces):
            result = await probe(
                Probe(ProbeKind.TCP),
                "127.0.0.1",
                me=_me(1, port),
                target=target,
                token=TOKEN if secured else None,
            )
    assert isinstance(result, ProbeResult)


def _member_sessions(post: Any, me: Identity) -> Sessions:
    values = {"peers": "2", "index": "1", "service": "s", "namespace": "n"}
    config = build_config("wait", values, PodFacts(hostname="example-job-1"))

    async def resolve(name: str) -> Resolution:
        raise AssertionError("a session resolves nothing")

    return Sessions(config, me, resolve, post, lambda: False, collections.Counter())


async def _member_session(port: int) -> list[Any]:
    """What a member does with its coordinator: handshake, session, each message to its core."""
    me = _me(1, port)
    channel = await connect("127.0.0.1", port)
    try:
        hello = await client_handshake(
            channel, me=me, role=Role.MEMBER, token=None, expected_index=0, timeout=10
        )
    except (HandshakeFailed, WireError):
        await channel.aclose()
        return []
    send, receive = anyio.create_memory_object_stream[Any](100)
    posted: list[Any] = []
    async with send, receive:
        await _member_sessions(send, me).carry(channel, hello, 7, dialled=True)
        while True:
            try:
                posted.append(receive.receive_nowait())
            except anyio.WouldBlock:
                break
    member = Member(now=0.0, rand=lambda: 0.5)
    member.reached_all("view", 0.0)
    member.opened(7, 0.0)
    for item in posted:
        if isinstance(item, Received):
            assert isinstance(member.received(item.message, 1.0), list)
    return posted


@pytest.mark.asyncio
@_budget(5)
@given(data=st.data(), count=st.integers(0, 3))
async def test_hostile_replies_to_a_members_coordinator_session(
    data: st.DataObject, count: int
) -> None:
    """A member opens its session: the impostor answers the hello with a hostile line, or with a
    proper reply and then hostile lines. The handshake ends in HandshakeFailed or WireError; the
    session's messages reach the member's core, which answers each with actions."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        lines = b"".join(data.draw(wire_lines(_me(0, port))) for _ in range(max(count, 1)))
        if count:  # a proper reply first, so that the hostile lines reach the session
            lines = encode(Hello(_me(0, port), Role.REPLY, "ab" * 16)) + lines
        with _impostor(listener, data.draw(split(lines))):
            await _member_session(port)


# --- the health server ----------------------------------------------------------------------------
_STATUS = re.compile(rb"HTTP/1\.1 (\d{3}) ")


def test_hostile_http_into_the_health_server(record: Record) -> None:
    """Requests of every method, target, version and header (Upgrade, Expect, chunked,
    lengths), pipelined, cut short, not HTTP at all, split at any byte and half-closed: each
    gets one answer or a close; HEAD answers carry no body; no bug; /readyz still answers."""
    events: list[LogLine] = []
    supervisor = Supervisor(events.append)
    tries = 0
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    with anyio.from_thread.start_blocking_portal() as portal:
        server = portal.start_task_soon(
            lambda: health.serve_health("127.0.0.1", port, lambda: True, supervisor=supervisor)
        )
        for _ in range(100):  # until it listens
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                portal.call(anyio.sleep, 0.02)

        @_budget(10)
        @given(data=st.data())
        def one(data: st.DataObject) -> None:
            nonlocal tries
            request = data.draw(http_requests())
            answer = _exchange("127.0.0.1", port, data.draw(split(request)))
            if answer:
                match = _STATUS.match(answer)
                assert match, answer[:200]
                status = int(match.group(1))
                assert status in (200, 400, 404, 405, 431, 501, 503, 505), answer[:200]
                if request.startswith(b"HEAD ") and status in (200, 404):
                    assert answer.endswith(b"\r\n\r\n"), answer
            assert not server.done() and supervisor.bugs == 0, events
            tries += 1

        one()
        assert _exchange(
            "127.0.0.1", port, [b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n"]
        ).startswith(b"HTTP/1.1 200 ")
        server.cancel()
    record(tries=tries)
