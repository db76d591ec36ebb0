"""A connection whose sender closed it while it waited in the backlog, its data older than a
peer's handshake deadline, is closed unread on the agent's port (its sender gave up or died:
answering it is work for nobody, and under overload that work is what keeps the backlog from
draining); one closed a moment ago (``printf LINE | nc``) is served, and the health port, whose
HTTP clients may close their side and still read the answer, serves every one
(``agent.io.listener``). The age is a parameter here, so no test waits five seconds.
"""

from __future__ import annotations

import functools
import socket

import anyio
import pytest

from agent.io import listener
from agent.io.supervisor import Supervisor
from agent.io.tcp import TCPStream

pytestmark = pytest.mark.timeout(30)


def _abandoned(port: int, line: bytes, *, half: bool) -> socket.socket:
    """A client that sends ``line`` and closes (``half``: only its sending side) before the
    listener accepts it."""
    client = socket.create_connection(("127.0.0.1", port))
    client.sendall(line)
    if half:
        client.shutdown(socket.SHUT_WR)
    else:
        client.close()
    return client


async def _served_lines(*, half_close: bool, after: float = 0.0) -> tuple[list[bytes], bytes]:
    """Lines the handler read, in accept order, once the connection that stays open was
    served; and what the half-closed client read back."""
    sock = listener.listen("127.0.0.1", 0)
    port = sock.getsockname()[1]
    early = _abandoned(port, b"gave up\n", half=half_close)
    live = socket.create_connection(("127.0.0.1", port))
    live.sendall(b"live\n")
    seen: list[bytes] = []
    live_served = anyio.Event()

    async def handler(stream: TCPStream) -> None:
        async with stream:
            line = await stream.receive()
            seen.append(line)
            await stream.send(b"answer\n")
        if line == b"live\n":
            live_served.set()

    supervisor = Supervisor(lambda _: None)
    with sock, live, early:
        async with anyio.create_task_group() as tg:
            serve = functools.partial(
                listener.serve, supervisor=supervisor, half_close=half_close, abandoned_after=after
            )
            tg.start_soon(serve, sock, handler)
            with anyio.fail_after(10):
                await live_served.wait()
            tg.cancel_scope.cancel()
        answer = early.recv(64) if half_close else b""
    return seen, answer


@pytest.mark.asyncio
async def test_a_connection_closed_before_it_is_accepted_is_never_read() -> None:
    seen, _ = await _served_lines(half_close=False)
    assert seen == [b"live\n"]


@pytest.mark.asyncio
async def test_a_connection_closed_a_moment_ago_is_still_served() -> None:
    """At the shipped age: the sender may be ``printf LINE | nc``, reading what comes back."""
    seen, _ = await _served_lines(half_close=False, after=listener.ABANDONED_AFTER)
    assert seen == [b"gave up\n", b"live\n"]


@pytest.mark.asyncio
async def test_a_health_client_that_half_closes_still_gets_its_answer() -> None:
    seen, answer = await _served_lines(half_close=True)
    assert seen == [b"gave up\n", b"live\n"]
    assert answer == b"answer\n"
