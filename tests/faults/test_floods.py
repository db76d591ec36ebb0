"""Floods against the agent's port and the health port: junk, stalled and idle connections by
the thousand cost only themselves, and every barrier still passes.
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import json
import resource
import socket
import subprocess
import time

import anyio
import anyio.abc
import pytest

from agent.config.model import Probe, ProbeKind
from agent.core.inputs import Reached
from agent.core.reach import view_digest
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
from agent.protocol.wire import Ack, Arrive, Identity, Release, Role
from tests.faults.conftest import (
    AgentProcess,
    Job,
    Pod,
    Record,
    agent_argv,
    all_done,
    released,
    wait_port,
)
from tests.faults.listening import (
    answers_a_peer,
    hello,
    listening,
    reset_after_member_hello,
    until_closed,
)
from tests.support import junkflood
from tests.support.faultdns import FaultDNS

pytestmark = pytest.mark.usefixtures("fast_progress")


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
    return junkflood.start([*where, *args], made=2000)


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


@pytest.mark.timeout(150)
def test_stalled_connections_do_not_lock_real_peers_out(
    fault_dns: FaultDNS, processes: list[AgentProcess], record: Record
) -> None:
    """A slowloris flood: one local process keeps 400 connections to the coordinator open, each
    silent or stopped mid-hello, more than it serves at once, and opens new ones as the old are
    dropped. Pods 1 and 2 start mid-flood and pass the barrier while the flood still goes on: the
    stalled connections do not lock real peers out until the flood stops."""
    job = Job(fault_dns, 3)
    job.publish()
    coordinator = _sidecars(job, processes, 0)
    args = ["--count", "10000000", "--concurrency", "400", "--deadline", "120"]
    flood = _flood(job, [0], [*args, "--kind", "silent-hold", "--kind", "half-hello-hold"])
    started = time.monotonic()
    members = [AgentProcess(agent_argv(job, "sidecar", i)) for i in (1, 2)]
    processes.extend(members)
    try:
        took = _released_after(coordinator + members, started, timeout=100)
        assert flood.poll() is None, "the barrier passed only once the flood had stopped"
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
        await listening(coordinator)
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
        await client.send(hello(Identity("job", "", 1, 2, 29300), role=Role.MEMBER))
        await anyio.wait_readable(sock)
        conn, _ = sock.accept()
        conn.setblocking(False)
        server = TCPStream(conn)
        with anyio.CancelScope() as dropped:
            dropped.cancel()
            await server_handshake(Channel(server), me=me, token=None, released=False)
        await server.aclose()
        got.append((await until_closed(client))[1])
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
            await listening(pod)
        async with anyio.create_task_group() as clients:
            for _ in range(50):
                clients.start_soon(reset_after_member_hello, job, target)
        for i in range(2):  # what arrived before is handled: each still answers a peer
            await answers_a_peer(job, i)
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
