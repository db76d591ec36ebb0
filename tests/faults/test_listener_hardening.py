"""The agent's port faces whatever can reach it: slow clients, garbage, resets and floods cost only
their own connections, and the barrier still passes.
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import json
import resource
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine
from typing import Any

import anyio
import anyio.abc
import pytest

from agent.config.model import Probe, ProbeKind
from agent.core.inputs import Reached
from agent.core.reach import view_digest
from agent.core.timing import DEFAULT_TIMING
from agent.errors import WireError
from agent.io import limits, listener
from agent.io.channel import (
    Channel,
    HandshakeFailed,
    client_handshake,
    server_handshake,
)
from agent.io.listener import listen
from agent.io.mux import Mux, open_port
from agent.io.probes import connect, probe
from agent.io.runner import identity_of, serve_and_wait
from agent.io.supervisor import Supervisor
from agent.io.tcp import TCPStream, open_tcp
from agent.protocol.wire import Ack, Arrive, Hello, Identity, Release, Role, encode
from tests.faults.conftest import (
    ROOT,
    AgentProcess,
    Job,
    Pod,
    Record,
    agent_argv,
    all_done,
    released,
    wait_port,
)
from tests.support.faultdns import FaultDNS

pytestmark = pytest.mark.usefixtures("fast_progress")


async def _connect(job: Job, i: int) -> anyio.abc.SocketStream:
    return await anyio.connect_tcp(job.address(i), job.port)


async def _until_closed(stream: anyio.abc.SocketStream) -> tuple[float, bytes]:
    """Read until the agent closes; (seconds it took, what it sent)."""
    started, got = time.monotonic(), b""
    try:
        while True:
            got += await stream.receive()
    except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
        pass
    return time.monotonic() - started, got


async def _reset(stream: anyio.abc.SocketStream) -> None:
    """Close with a TCP reset (SO_LINGER 0), as a crashed or killed client does."""
    sock = stream.extra(anyio.abc.SocketAttribute.raw_socket)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    await stream.aclose()


def _hello(
    identity: Identity, role: Role = Role.PROBE, nonce: str = "ab" * 16, *, proves: bool = False
) -> bytes:
    return encode(Hello(identity, role, nonce, proves=proves))


async def _listening(pod: Pod) -> None:
    """The pod's listener is up: it has written a progress line or reached someone."""
    await pod.until(lambda e: e.kind in ("progress", "reached"))


async def _answers_a_peer(job: Job, i: int) -> None:
    me = identity_of(job.config(1 - i))
    result = await probe(Probe(ProbeKind.TCP), job.address(i), me=me, target=i, token=None)
    assert isinstance(result, Reached), result


class _Tally:
    """Counts up to ``n``; ``wait`` returns once it has."""

    def __init__(self, n: int) -> None:
        self.n, self.count, self._done = n, 0, anyio.Event()

    def mark(self) -> None:
        self.count += 1
        if self.count >= self.n:
            self._done.set()

    async def wait(self) -> None:
        await self._done.wait()


# --- slow clients ---------------------------------------------------------------------------------
@pytest.mark.timeout(30)
@pytest.mark.asyncio
async def test_a_client_that_stalls_mid_hello_is_dropped_at_the_handshake_deadline(
    fault_dns: FaultDNS, record: Record
) -> None:
    """Clients that connect and say nothing, send half a hello, drip a byte every 0.4 s, or (with
    a token) never send their proof are each dropped about the handshake timeout (5 s) after they
    connect; meanwhile a real peer's probe is answered at once."""
    job = Job(fault_dns, 2)
    secured = Job(fault_dns, 2)
    job.publish(0)
    secured.publish(0)
    me = identity_of(job.config(1))
    closed: dict[str, float] = {}
    connected, all_closed = _Tally(4), _Tally(4)

    async def silent() -> None:
        async with await _connect(job, 0) as s:
            connected.mark()
            closed["silent"] = (await _until_closed(s))[0]
            all_closed.mark()

    async def half_hello() -> None:
        async with await _connect(job, 0) as s:
            await s.send(_hello(me)[:40])
            connected.mark()
            closed["half hello"] = (await _until_closed(s))[0]
            all_closed.mark()

    async def drip() -> None:
        async with await _connect(job, 0) as s:
            started = time.monotonic()
            async with anyio.create_task_group() as both:

                async def send_slowly() -> None:
                    for byte in _hello(me)[:-1]:
                        await s.send(bytes([byte]))
                        await anyio.sleep(0.4)  # the drip's pace

                both.start_soon(send_slowly)
                connected.mark()
                await _until_closed(s)
                closed["drip"] = time.monotonic() - started
                all_closed.mark()
                both.cancel_scope.cancel()

    async def no_proof() -> None:
        async with await _connect(secured, 0) as s:
            started = time.monotonic()
            await s.send(_hello(identity_of(secured.config(1, token="t0ken")), proves=True))
            connected.mark()
            _, got = await _until_closed(s)
            assert b'"t":"hello"' in got  # the reply came, then nothing more was accepted
            closed["hello, no proof"] = time.monotonic() - started
            all_closed.mark()

    async with anyio.create_task_group() as tg:
        pods = [job.start(tg, 0), secured.start(tg, 0, token="t0ken")]
        for pod in pods:
            await _listening(pod)
        for client in (silent, half_hello, drip, no_proof):
            tg.start_soon(client)
        await connected.wait()  # the slow clients are in
        started = time.monotonic()
        result = await probe(Probe(ProbeKind.TCP), job.address(0), me=me, target=0, token=None)
        answered = time.monotonic() - started
        assert isinstance(result, Reached), result
        await all_closed.wait()
        assert not any(p.done.is_set() for p in pods), [p.error for p in pods]
        tg.cancel_scope.cancel()
    assert answered < 0.5
    for what, seconds in closed.items():
        deadline = DEFAULT_TIMING.handshake_timeout
        assert deadline - 0.6 <= seconds <= deadline + 1.0, (what, seconds)
    record(**{k.replace(" ", "_").replace(",", "") + "_s": round(v, 2) for k, v in closed.items()})
    record(probe_answered_s=round(answered, 3))


# --- bad input: one connection at a time ----------------------------------------------------------
STRANGER = Identity("another-job", "", 0, 1, 29300)
JUNK: dict[str, bytes] = {
    "garbage line": b"hello? is this thing on\n",
    "binary": bytes(range(256)) * 4,
    "http request": b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
    "oversized line": b"x" * 100_000,
    "oversized hello": _hello(STRANGER).replace(b'"ab', b'"' + b"ab" * 2000),
    "deeply nested JSON": b"[" * 2000 + b"]" * 2000 + b"\n",
    "a message that is not a hello": encode(Arrive()),
    "another job's hello": _hello(STRANGER),
    "unknown protocol version": b'{"v":1,"t":"hello"}\n',
}


@pytest.mark.timeout(30)
@pytest.mark.parametrize("kind", list(JUNK))
@pytest.mark.asyncio
async def test_bad_input_is_closed_at_once_and_costs_nothing_else(
    fault_dns: FaultDNS, record: Record, kind: str
) -> None:
    """Twenty connections of this junk to each pod: the agent closes each well before the
    handshake deadline, logs nothing for it, and the barrier passes."""
    job = Job(fault_dns, 2)
    job.publish(0)
    payload = JUNK[kind]
    times: list[float] = []

    async def one(i: int) -> None:
        async with await _connect(job, i) as s:
            with contextlib.suppress(anyio.BrokenResourceError, OSError):
                await s.send(payload)  # may be closed while we still send: that is the point
            times.append((await _until_closed(s))[0])

    async with anyio.create_task_group() as tg:
        pods = [job.start(tg, i) for i in range(2)]
        for pod in pods:
            await _listening(pod)
        async with anyio.create_task_group() as clients:
            for _ in range(20):
                for i in range(2):
                    clients.start_soon(one, i)
        job.publish(1)
        await all_done(pods)
    assert released(pods), [p.error for p in pods]
    # ~10 ms; slack for a busy machine
    assert max(times) < DEFAULT_TIMING.handshake_timeout / 2, max(times)
    assert not any(e.kind == "refused" for p in pods for e in p.events)
    record(tries=len(times), slowest_close_s=round(max(times), 3))


# --- connections that end badly -------------------------------------------------------------------
async def _half_closed_at_once(job: Job, target: int) -> None:
    async with await _connect(job, target) as s:
        await s.send_eof()
        await _until_closed(s)


async def _half_closed_after_hello(job: Job, target: int) -> None:
    async with await _connect(job, target) as s:
        await s.send(_hello(identity_of(job.config(1 - target))))
        await s.send_eof()
        _, got = await _until_closed(s)
        assert b'"role":"reply"' in got  # answered, though we said we were done sending


async def _reset_at_once(job: Job, target: int) -> None:
    await _reset(await _connect(job, target))


async def _reset_after_probe_hello(job: Job, target: int) -> None:
    s = await _connect(job, target)
    await s.send(_hello(identity_of(job.config(1 - target))))
    await _reset(s)


async def _reset_after_member_hello(job: Job, target: int) -> None:
    s = await _connect(job, target)
    await s.send(_hello(identity_of(job.config(1 - target)), role=Role.MEMBER))
    await _reset(s)


ENDINGS: dict[str, Callable[[Job, int], Coroutine[Any, Any, None]]] = {
    "half-closed before a byte": _half_closed_at_once,
    "half-closed after a hello": _half_closed_after_hello,
    "reset before a byte": _reset_at_once,
    "reset right after a probe's hello": _reset_after_probe_hello,
}


@pytest.mark.timeout(30)
@pytest.mark.parametrize("kind", list(ENDINGS))
@pytest.mark.asyncio
async def test_connections_that_end_badly_cost_nothing_else(
    fault_dns: FaultDNS, record: Record, kind: str
) -> None:
    """Fifty connections to each pod end this way: no agent fails, and the barrier passes."""
    job = Job(fault_dns, 2)
    job.publish(0)

    async with anyio.create_task_group() as tg:
        pods = [job.start(tg, i) for i in range(2)]
        for pod in pods:
            await _listening(pod)
        async with anyio.create_task_group() as clients:
            for _ in range(50):
                for i in range(2):
                    clients.start_soon(ENDINGS[kind], job, i)
        for i in range(2):  # what arrived before is handled: each still answers a peer
            await _answers_a_peer(job, i)
        assert not any(p.done.is_set() for p in pods), [p.error for p in pods]
        job.publish(1)
        await all_done(pods)
    assert released(pods), [p.error for p in pods]
    record(tries=100)


# --- floods ---------------------------------------------------------------------------------------
def _low_fd_limit() -> None:
    """A usual container's limit of open files: soft 1024 (Python does not raise it itself)."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, min(hard, 4096)))


def _sidecars(job: Job, processes: list[AgentProcess], *indices: int) -> list[AgentProcess]:
    agents = [
        AgentProcess(agent_argv(job, "sidecar", i), preexec_fn=_low_fd_limit) for i in indices
    ]
    processes.extend(agents)
    for i in indices:
        wait_port(job, i)
    return agents


def _flood(
    job: Job, targets: list[int], args: list[str], *, health: bool = False
) -> subprocess.Popen[str]:
    """Start junkflood against ``targets`` (pod indices, round robin; their health port if
    ``health``); returns once 2,000 connections are made."""
    port = job.port + 1 if health else job.port
    where = [arg for i in targets for arg in ("--target", f"{job.address(i)}:{port}")]
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.support.junkflood", *where, *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        if line.startswith("made 2000"):
            return proc
    raise AssertionError(f"the flood ended early: {proc.communicate()}")


def _summary(proc: subprocess.Popen[str], *, stop: bool) -> dict[str, object]:
    if stop:
        proc.terminate()
    out, _ = proc.communicate(timeout=60)
    summary: dict[str, object] = json.loads(out)
    return summary


def _released_after(agents: list[AgentProcess], since: float, timeout: float = 30) -> float:
    return max(agent.wait_line("barrier released", timeout) for agent in agents) - since


async def _still_serving(job: Job, agents: list[AgentProcess]) -> None:
    """Every pod is up, answers a peer's probe, and exits 0 on SIGTERM without a traceback."""
    for agent in agents:
        assert agent.proc.poll() is None, agent.stderr
    me = identity_of(job.config(1))
    for i in range(job.peers):
        result = await probe(Probe(ProbeKind.TCP), job.address(i), me=me, target=i, token=None)
        assert isinstance(result, Reached), result
    for agent in agents:
        assert agent.stop() == 0, agent.stderr
        assert "Traceback" not in agent.stderr


@pytest.mark.timeout(90)
@pytest.mark.asyncio
async def test_a_flood_of_10000_junk_connections_does_not_stop_a_3_pod_barrier(
    fault_dns: FaultDNS, processes: list[AgentProcess], record: Record
) -> None:
    """Three sidecars with 1024 open files each wait for pod 2's record. A local process opens
    10,000 junk connections, 1,000 at a time, half of them to the coordinator: resets, garbage,
    binary, oversized lines, HTTP, other jobs' hellos, and connections held silent or mid-hello.
    With 2,000 in, pod 2 is published: the barrier passes, every pod survives the whole flood,
    still answers probes and exits 0 on SIGTERM. The same barrier without a flood is timed too."""
    took: dict[str, float] = {}
    summary: dict[str, object] = {}
    for flooded in (False, True):
        job = Job(fault_dns, 3)
        job.publish(0, 1)
        agents = _sidecars(job, processes, 0, 1, 2)
        flood = None
        if flooded:
            flood = _flood(job, [0, 0, 1, 2], ["--count", "10000", "--concurrency", "1000"])
        started = time.monotonic()
        job.publish(2)
        try:
            took["flooded" if flooded else "quiet"] = _released_after(agents, started)
        finally:
            if flood is not None:
                summary = _summary(flood, stop=False)
        await _still_serving(job, agents)
    assert summary["made"] == 10_000 and summary["connected"] == 10_000, summary
    assert took["flooded"] < 10, took
    record(
        tries=10_000,
        barrier_quiet_s=round(took["quiet"], 3),
        barrier_flooded_s=round(took["flooded"], 3),
        flood=summary,
    )


@pytest.mark.timeout(60)
def test_stalled_connections_do_not_lock_real_peers_out(
    fault_dns: FaultDNS, processes: list[AgentProcess], record: Record
) -> None:
    """A slowloris flood: one local process keeps 400 connections to the coordinator open, each
    silent or stopped mid-hello, more than it serves at once. Pods 1 and 2 start mid-flood and
    must pass the barrier within 4 s (about 1 s without the flood): before the stalled
    connections time out (5 s), not when the flood stops."""
    job = Job(fault_dns, 3)
    job.publish()
    coordinator = _sidecars(job, processes, 0)
    args = ["--count", "10000000", "--concurrency", "400", "--deadline", "20"]
    flood = _flood(job, [0], [*args, "--kind", "silent-hold", "--kind", "half-hello-hold"])
    started = time.monotonic()
    members = [AgentProcess(agent_argv(job, "sidecar", i)) for i in (1, 2)]
    processes.extend(members)
    try:
        took = _released_after(coordinator + members, started, timeout=4)
    finally:
        summary = _summary(flood, stop=True)
        record(flood=summary)
    record(tries=summary["made"], barrier_flooded_s=round(took, 3))


def _coordinator(tg: anyio.abc.TaskGroup, job: Job, *, shared: bool) -> Pod:
    """Pod 0 in this process: on a port of its own (``wait``), or on a port shared through the
    multiplexer, as a sidecar, ``run --exit-barrier`` and named barriers serve it."""
    if not shared:
        return job.start(tg, 0)
    pod = Pod(0, job.config(0))
    mux = Mux(port=job.port, report=pod.report)
    sock = open_port(pod.config)
    serve = functools.partial(listener.serve, supervisor=Supervisor(pod.report))
    tg.start_soon(serve, sock, mux.serve)

    async def run() -> None:
        with sock:
            try:
                pod.outcome = await serve_and_wait(pod.config, report=pod.report, mux=mux)
            except Exception as exc:  # the test reads it
                pod.error = exc
            finally:
                pod.done.set()

    tg.start_soon(run)
    return pod


@pytest.mark.timeout(30)
@pytest.mark.parametrize("shared", [False, True], ids=["own-port", "shared-port"])
@pytest.mark.asyncio
async def test_the_bound_drops_the_contact_stalled_longest_and_never_a_session(
    fault_dns: FaultDNS, record: Record, monkeypatch: pytest.MonkeyPatch, shared: bool
) -> None:
    """The coordinator serves at most MAX_HANDSHAKING contacts in their handshake (8 here), on
    its own port and on the port a sidecar shares with its other barriers alike. The test is
    pod 1: with its session open, it makes 12 connections that say nothing. The 4 made first
    are closed and the 8 newest kept; its session is not touched: the Arrive it sends then is
    answered with the Release. The coordinator says once that it drops connections."""
    monkeypatch.setattr(limits, "MAX_HANDSHAKING", 8)
    job = Job(fault_dns, 2)
    job.publish()
    me = identity_of(job.config(1))

    async def answer_probes(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            with contextlib.suppress(WireError, HandshakeFailed):
                await server_handshake(Channel(stream), me=me, token=None, released=False)

    async def closed(sock: socket.socket) -> bool:
        await anyio.wait_readable(sock)
        return sock.recv(1) == b""

    async with (
        await anyio.create_tcp_listener(local_host=job.address(1), local_port=job.port) as us,
        anyio.create_task_group() as tg,
    ):
        tg.start_soon(us.serve, answer_probes)
        coordinator = _coordinator(tg, job, shared=shared)
        await _listening(coordinator)
        session = await connect(job.address(0), job.port, source=job.address(1))
        await client_handshake(session, me=me, role=Role.MEMBER, token=None, expected_index=0)
        silent = [socket.create_connection((job.address(0), job.port)) for _ in range(12)]
        for sock in silent:
            sock.setblocking(False)
        dropped = [await closed(sock) for sock in silent[:4]]
        kept = []
        for sock in silent[4:]:
            try:
                kept.append(sock.recv(1, socket.MSG_PEEK) == b"")
            except BlockingIOError:
                kept.append(False)  # open, nothing said: not dropped
        await coordinator.until(lambda e: e.kind == "reached-all")
        # the view the coordinator reached too: this process's instance at both indices
        await session.send(Arrive(view_digest([me.instance, me.instance])))
        verdict = await session.receive(10)
        await session.send(Ack())
        await all_done([coordinator])
        for sock in silent:
            sock.close()
        await session.aclose()
        tg.cancel_scope.cancel()
    assert dropped + kept == [True] * 4 + [False] * 8
    assert isinstance(verdict, Release)
    said = [e for e in coordinator.events if "still in their handshake" in e.message]
    assert len(said) == 1, coordinator.messages()
    record(tries=12, dropped=4)


@pytest.mark.timeout(10)
@pytest.mark.asyncio
async def test_a_contact_dropped_with_its_hello_already_in_gets_no_reply() -> None:
    """Dropped for a newcomer while it waited to run, a contact's hello is already in: on a plain
    socket nothing in the handshake would wait, so it used to reply anyway, and its peer took
    the session that the agent then closed for open."""
    me = Identity("job", "", 0, 2, 29300)
    got: list[bytes] = []

    with listen("127.33.0.1", 0) as sock:
        client = await open_tcp("127.33.0.1", sock.getsockname()[1])
        await client.send(_hello(Identity("job", "", 1, 2, 29300), role=Role.MEMBER))
        await anyio.wait_readable(sock)
        conn, _ = sock.accept()
        conn.setblocking(False)
        server = TCPStream(conn)
        with anyio.CancelScope() as dropped:
            dropped.cancel()
            await server_handshake(Channel(server), me=me, token=None, released=False)
        await server.aclose()
        got.append((await _until_closed(client))[1])
    assert got == [b""]


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    "target",
    [
        pytest.param(0, id="to-the-coordinator"),
        pytest.param(1, id="to-a-member"),
    ],
)
@pytest.mark.asyncio
async def test_a_member_hello_then_a_reset(
    fault_dns: FaultDNS, record: Record, target: int
) -> None:
    """Fifty clients say hello as a member (as pod 1, or pod 0 to pod 1) and reset at once: the
    agent they reached neither fails nor counts them, and the barrier passes."""
    job = Job(fault_dns, 2)
    job.publish(0)

    async with anyio.create_task_group() as tg:
        pods = [job.start(tg, i) for i in range(2)]
        for pod in pods:
            await _listening(pod)
        async with anyio.create_task_group() as clients:
            for _ in range(50):
                clients.start_soon(_reset_after_member_hello, job, target)
        for i in range(2):  # what arrived before is handled: each still answers a peer
            await _answers_a_peer(job, i)
        assert not any(p.done.is_set() for p in pods), [p.error for p in pods]
        job.publish(1)
        await all_done(pods)
    assert released(pods), [p.error for p in pods]
    record(tries=50)


@pytest.mark.timeout(60)
def test_a_flood_of_idle_connections_on_the_health_port(
    fault_dns: FaultDNS, processes: list[AgentProcess], record: Record
) -> None:
    """A sidecar (1024 open files) gets 1,500 idle connections at a time on its health port:
    /readyz still answers kubelet during the flood, and the sidecar survives and exits 0 on
    SIGTERM."""
    job = Job(fault_dns, 1)
    job.publish()
    agent = AgentProcess(agent_argv(job, "sidecar", 0), preexec_fn=_low_fd_limit)
    processes.append(agent)
    agent.wait_line("serving /readyz")
    args = ["--count", "1000000", "--concurrency", "1500", "--deadline", "20"]
    flood = _flood(job, [0], [*args, "--kind", "silent-hold"], health=True)
    try:
        started = time.monotonic()
        connection = http.client.HTTPConnection(job.address(0), job.port + 1, timeout=5)
        connection.request("GET", "/readyz")
        status = connection.getresponse().status
        connection.close()
        answered = time.monotonic() - started
    finally:
        summary = _summary(flood, stop=True)
    assert status == 200
    assert agent.proc.poll() is None, agent.stderr
    assert agent.stop() == 0 and "Traceback" not in agent.stderr, agent.stderr
    record(tries=summary["made"], readyz_answered_s=round(answered, 3), flood=summary)
