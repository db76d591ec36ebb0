"""Outgoing connections on plain sockets (agent.io.tcp) against real loopback listeners: the probe's
answers and error texts, and a session's close (under trio too, in tests/integration/test_trio.py).
"""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable

import anyio
import anyio.abc
import pytest

from agent.config.model import Probe, ProbeKind
from agent.core.inputs import ProbeResult, Reached, Unreached
from agent.core.timing import Timing
from agent.errors import WireError
from agent.io.channel import Channel, server_handshake
from agent.io.probes import connect, probe
from agent.io.tcp import TCPStream
from agent.protocol.instance import instance_id
from agent.protocol.wire import Identity

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(20)]

SERVER, CLIENT, NOBODY = "127.31.0.1", "127.31.0.2", "127.31.0.3"

Handler = Callable[[anyio.abc.SocketStream], Awaitable[None]]


async def _serving(handler: Handler, then: Callable[[int], Awaitable[None]]) -> None:
    """Run ``then(port)`` while a listener on SERVER hands each connection to ``handler``."""
    async with await anyio.create_tcp_listener(local_host=SERVER) as listener:
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        async with anyio.create_task_group() as tg:
            tg.start_soon(listener.serve, handler)
            await then(port)
            tg.cancel_scope.cancel()


def _reason(result: ProbeResult) -> str:
    """Why the probe did not reach the peer (it must not have)."""
    assert isinstance(result, Unreached), result
    return result.failure.reason


def _me(port: int, index: int = 0) -> Identity:
    return Identity("job", "uid", index, 2, port, instance_id(index, index))


async def test_a_probe_says_hello_from_the_listen_address_and_learns_who_answers() -> None:
    seen: list[str] = []

    async def answer(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            channel = Channel(stream)
            seen.append(channel.peer_address)
            port = stream.extra(anyio.abc.SocketAttribute.local_port)
            await server_handshake(channel, me=_me(port, 1), token=None, released=True)

    async def check(port: int) -> None:
        result = await probe(
            Probe(ProbeKind.TCP), SERVER, me=_me(port), target=1, token=None, source=CLIENT
        )
        assert result == Reached(index=1, instance=instance_id(1, 1), released=True)

    await _serving(answer, check)
    assert seen == [CLIENT]


async def test_connection_failures_read_as_users_debug_them() -> None:
    async def check(port: int) -> None:
        only_connect = Probe(ProbeKind.TCP, port)
        refused = await probe(only_connect, NOBODY, me=_me(port), target=None, token=None)
        assert _reason(refused) == f"connect to port {port}: refused"
        # not an address of this host, as a mistyped --listen would be
        unbound = await probe(
            only_connect, SERVER, me=_me(port), target=None, token=None, source="192.0.2.1"
        )
        assert _reason(unbound) == (
            f"connect to port {port}: cannot bind to 192.0.2.1: Cannot assign requested address"
        )

    await _serving(_close_at_once, check)


async def _close_at_once(stream: anyio.abc.SocketStream) -> None:
    await stream.aclose()


async def test_a_hello_unanswered_before_the_peer_closes_fails_the_probe() -> None:
    async def check(port: int) -> None:
        result = await probe(Probe(ProbeKind.TCP), SERVER, me=_me(port), target=None, token=None)
        assert _reason(result) == "hello failed: connection closed"

    await _serving(_close_at_once, check)


async def test_closing_a_session_wakes_its_reader() -> None:
    """Contacts.close closes a session's channel while its reader waits for the next message."""

    async def hold(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            await anyio.sleep_forever()

    async def check(port: int) -> None:
        channel = await connect(SERVER, port, source=CLIENT)
        failures: list[str] = []

        async def read() -> None:
            try:
                await channel.receive(None)
            except WireError as exc:
                failures.append(str(exc))

        async with anyio.create_task_group() as tg:
            tg.start_soon(read)
            await anyio.wait_all_tasks_blocked()
            await channel.aclose()
        assert failures == ["connection closed"]

    await _serving(hold, check)


async def test_a_peer_that_never_answers_the_hello_fails_at_the_reply_deadline() -> None:
    """The probe's one deadline moves from the connect's to the reply's once connected."""
    timing = Timing(connect_timeout=0.1, handshake_timeout=0.3)
    unblock = anyio.Event()

    async def silent(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            await unblock.wait()

    async def check(port: int) -> None:
        result = await probe(
            Probe(ProbeKind.TCP), SERVER, me=_me(port), target=None, token=None, timing=timing
        )
        unblock.set()
        assert _reason(result) == "hello failed: no message before the deadline"

    await _serving(silent, check)


async def test_a_connect_that_completes_after_its_deadline_is_a_timeout_not_a_crash(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On a loaded node the loop can see the connect done and its deadline passed at once: the
    probe's scope is cancelled already when it moves on to the reply's deadline."""
    timing = Timing(connect_timeout=0)  # cancelled as soon as entered
    with socket.create_server((SERVER, 0)) as server:
        ours = socket.create_connection(server.getsockname())
        ours.setblocking(False)
        theirs, _ = server.accept()

    async def connected_without_a_checkpoint(*_: object) -> TCPStream:
        return TCPStream(ours)

    monkeypatch.setattr("agent.io.probes._open", connected_without_a_checkpoint)
    with theirs:
        result = await probe(
            Probe(ProbeKind.TCP), SERVER, me=_me(1), target=None, token=None, timing=timing
        )
    assert _reason(result) == "hello failed: no message before the deadline"


async def test_a_connect_never_accepted_times_out() -> None:
    """A listener whose backlog is full drops new SYNs, as a host gone silent does."""
    timing = Timing(connect_timeout=0.3)
    with socket.socket() as full:
        full.bind((SERVER, 0))
        full.listen(0)
        port = full.getsockname()[1]
        queued: list[socket.socket] = []
        try:
            while len(queued) < 8:  # until the queue is full (one connection on Linux)
                try:
                    queued.append(socket.create_connection((SERVER, port), timeout=0.5))
                except TimeoutError:
                    break
            result = await probe(
                Probe(ProbeKind.TCP, port),
                SERVER,
                me=_me(port),
                target=None,
                token=None,
                timing=timing,
            )
        finally:
            for sock in queued:
                sock.close()
    assert _reason(result) == f"connect to port {port} timed out"
