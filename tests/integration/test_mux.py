"""The shared port: each connection reaches the barrier instance its hello names, with every
byte it sent; garbage and silence cost only their own connection. Real sockets on loopback."""

from __future__ import annotations

import socket
from collections.abc import Callable, Coroutine
from typing import Any

import anyio
import pytest

from agent.io.mux import Mux
from agent.io.tcp import TCPStream
from agent.protocol.wire import Hello, Identity, Role, encode

pytestmark = pytest.mark.timeout(30)

START = Identity("job", "uid", 0, 3, 29300, "a")
EXIT = Identity("job", "uid/exit", 0, 3, 29300, "ax0")


async def _route(mux: Mux, data: bytes) -> list[tuple[str, bytes]]:
    """Send ``data`` (then close) into ``mux.serve``; which handler got what."""
    got: list[tuple[str, bytes]] = []

    def handler(name: str) -> Callable[[TCPStream], Coroutine[Any, Any, None]]:
        async def handle(stream: TCPStream) -> None:
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
    data = _hello(Identity("job", "uid/exit", 2, 3, 29300, "bx7")) + b"more\n"
    assert await _route(mux, data) == [("exit", data)]
    assert mux.heard_by(EXIT) == {2: "bx7"}
    start = _hello(Identity("job", "uid", 1, 3, 29300, "c"))
    assert await _route(mux, start) == [("start", start)]


@pytest.mark.asyncio
async def test_an_unknown_instance_goes_to_the_first_registered() -> None:
    stranger = _hello(Identity("other", "uid/exit", 1, 3, 29300, "c"))
    mux = Mux()
    assert await _route(mux, stranger) == [("start", stranger)]
    assert mux.heard_by(EXIT) == {}


@pytest.mark.asyncio
@pytest.mark.parametrize("data", [b"", b"GET / HTTP/1.0\r\n\r\n", b"x" * 5000, b"{}\n"])
async def test_garbage_reaches_no_instance(data: bytes) -> None:
    assert await _route(Mux(), data) == []
