"""The shared port: each connection reaches the barrier instance its hello names, with every
byte it sent; garbage and silence cost only their own connection; the handshake bound counts a
connection only until its instance has proven it; an instance that ends takes its connections
with it. Real sockets on loopback."""

from __future__ import annotations

import socket
from collections.abc import Callable, Coroutine
from typing import Any

import anyio
import pytest

from agent.io import limits
from agent.io.handshaking import Ticket
from agent.io.mux import Mux
from agent.io.tcp import TCPStream
from agent.protocol.wire import EXIT_BARRIER, Hello, Identity, Role, encode

pytestmark = pytest.mark.timeout(30)

INSTANCE = "0000000000000001-00000000"
START = Identity("job", "uid", 0, 3, 29300, INSTANCE)
EXIT = Identity("job", "uid", 0, 3, 29300, INSTANCE, EXIT_BARRIER, 0)


async def _route(mux: Mux, data: bytes) -> list[tuple[str, bytes]]:
    """Send ``data`` (then close) into ``mux.serve``; which handler got what."""
    got: list[tuple[str, bytes]] = []

    def handler(name: str) -> Callable[[TCPStream, Ticket], Coroutine[Any, Any, None]]:
        async def handle(stream: TCPStream, ticket: Ticket) -> None:
            chunks = []
            try:
                while True:
                    chunks.append(await stream.receive())
            except anyio.EndOfStream:
                got.append((name, b"".join(chunks)))

        return handle

    mux.register(START, handler("start"))
    mux.register(EXIT, handler("exit"))
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    theirs.sendall(data)
    theirs.shutdown(socket.SHUT_WR)
    with theirs:
        await mux.serve(TCPStream(ours))
    return got


def _hello(identity: Identity) -> bytes:
    return encode(Hello(identity, Role.PROBE, "n" * 32))


@pytest.mark.asyncio
async def test_a_hello_goes_to_the_instance_it_names_with_every_byte() -> None:
    mux = Mux()
    data = _hello(Identity("job", "uid", 2, 3, 29300, INSTANCE, EXIT_BARRIER, 7)) + b"more\n"
    assert await _route(mux, data) == [("exit", data)]
    start = _hello(Identity("job", "uid", 1, 3, 29300, INSTANCE))
    assert await _route(mux, start) == [("start", start)]


@pytest.mark.asyncio
async def test_an_unknown_instance_goes_to_the_first_registered() -> None:
    stranger = _hello(Identity("other", "uid", 1, 3, 29300, INSTANCE, EXIT_BARRIER, 0))
    assert await _route(Mux(), stranger) == [("start", stranger)]


@pytest.mark.asyncio
@pytest.mark.parametrize("data", [b"", b"GET / HTTP/1.0\r\n\r\n", b"x" * 5000, b"{}\n"])
async def test_garbage_reaches_no_instance(data: bytes) -> None:
    assert await _route(Mux(), data) == []


async def _closed(sock: socket.socket) -> bool:
    """Whether the other end has closed ``sock`` (waits until it is readable)."""
    await anyio.wait_readable(sock)
    try:
        return sock.recv(1, socket.MSG_PEEK) == b""
    except ConnectionResetError:
        return True


@pytest.mark.asyncio
async def test_the_bound_counts_a_connection_only_until_it_is_proven(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With room for 4 unproven connections: 6 sessions say hello and are proven, then 6
    connections say nothing. The 2 silent ones made first are dropped for the 4 newest; every
    session stays open (a session once counted for its whole life, and a Job of more pods than
    the bound cut its own sessions)."""
    monkeypatch.setattr(limits, "MAX_HANDSHAKING", 4)
    mux = Mux()
    proven = anyio.Event()
    count = 0

    async def hold(stream: TCPStream, ticket: Ticket) -> None:
        nonlocal count
        ticket.proven()
        count += 1
        if count == 6:
            proven.set()
        await anyio.sleep_forever()

    mux.register(START, hold)
    pairs = [socket.socketpair() for _ in range(12)]
    async with anyio.create_task_group() as tg:
        for ours, theirs in pairs:
            ours.setblocking(False)
            theirs.setblocking(False)
        for ours, theirs in pairs[:6]:
            theirs.sendall(_hello(Identity("job", "uid", 1, 3, 29300, INSTANCE)))
            tg.start_soon(mux.serve, TCPStream(ours))
        await proven.wait()
        for ours, _ in pairs[6:]:
            tg.start_soon(mux.serve, TCPStream(ours))
            await anyio.wait_all_tasks_blocked()
        dropped = [await _closed(theirs) for _, theirs in pairs[6:8]]
        open_ = []
        for _, theirs in pairs[:6] + pairs[8:]:
            try:
                open_.append(theirs.recv(1, socket.MSG_PEEK) != b"")
            except BlockingIOError:
                open_.append(True)
        assert (len(mux.handshaking), mux.handshaking.drops) == (4, 2)
        tg.cancel_scope.cancel()
    for ours, theirs in pairs:
        ours.close()
        theirs.close()
    assert dropped == [True, True]
    assert open_ == [True] * 10


@pytest.mark.asyncio
async def test_an_instance_that_ends_takes_its_connections_with_it() -> None:
    """The exit barrier's instance ends (released, timed out, withdrawn) while a peer's session
    to it is open: that connection is closed, and the start barrier's is not."""
    mux = Mux()
    serving = anyio.Event()
    count = 0

    async def hold(stream: TCPStream, ticket: Ticket) -> None:
        nonlocal count
        ticket.proven()
        count += 1
        if count == 2:
            serving.set()
        await anyio.sleep_forever()

    mux.register(START, hold)
    mux.register(EXIT, hold)
    pairs = [socket.socketpair() for _ in range(2)]
    async with anyio.create_task_group() as tg:
        for (ours, theirs), identity in zip(pairs, (START, EXIT), strict=True):
            ours.setblocking(False)
            theirs.setblocking(False)
            theirs.sendall(_hello(identity))
            tg.start_soon(mux.serve, TCPStream(ours))
        await serving.wait()
        mux.unregister(EXIT)
        assert await _closed(pairs[1][1])
        with pytest.raises(BlockingIOError):
            pairs[0][1].recv(1, socket.MSG_PEEK)
        tg.cancel_scope.cancel()
    for ours, theirs in pairs:
        ours.close()
        theirs.close()
