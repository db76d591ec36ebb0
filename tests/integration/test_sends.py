"""The barrier's sends (Sessions.send) over real loopback sessions accepted by
agent.io.listener: what each session gets, in what order, and what happens to a session whose
socket takes nothing."""

from __future__ import annotations

import collections
import functools
from collections.abc import Awaitable, Callable

import anyio
import pytest

from agent.config.parse import build_config
from agent.core.inputs import Input, Resolution
from agent.core.log import LogLine
from agent.core.timing import DEFAULT_TIMING, Timing
from agent.errors import WireError
from agent.io import listener
from agent.io.channel import Channel
from agent.io.runner import identity_of
from agent.io.sessions import Sessions
from agent.io.supervisor import Supervisor
from agent.io.tcp import TCPStream, open_tcp
from agent.protocol.wire import Abort, Ack, Message, Refuse, Release
from agent.topology.podfiles import PodFacts

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(20)]

SERVER = "127.32.0.1"
SESSIONS = 3
GONE = 7  # a session the loop still names after it closed


def _no_bug(event: LogLine) -> None:
    raise AssertionError(event.message)


async def _never_resolves(name: str) -> Resolution:
    """Sessions here are carried, never dialled: nothing is ever resolved."""
    await anyio.sleep_forever()
    raise AssertionError(f"resolved {name}")


async def _sessions(
    then: Callable[[Sessions, list[Channel]], Awaitable[None]], timing: Timing = DEFAULT_TIMING
) -> Sessions:
    """``then(sessions, clients)`` with SESSIONS sessions accepted by agent.io.listener and held
    as the coordinator holds them (``Sessions.channels``), and the members' ends of them."""
    config = build_config(
        "wait",
        {"peers": "3", "index": "0", "service": "svc", "namespace": "default"},
        PodFacts(hostname="job-0"),
    )
    post, _ = anyio.create_memory_object_stream[Input](100)
    ours = Sessions(
        config=config,
        me=identity_of(config),
        resolve=_never_resolves,
        post=post,
        released=lambda: False,
        counts=collections.Counter(),
        timing=timing,
    )
    accepted = anyio.Event()

    async def hold(stream: TCPStream) -> None:
        ours.channels[len(ours.channels)] = Channel(stream)
        if len(ours.channels) == SESSIONS:
            accepted.set()
        await anyio.sleep_forever()

    with listener.listen(SERVER, 0) as sock:
        async with anyio.create_task_group() as tg:
            serve = functools.partial(listener.serve, supervisor=Supervisor(_no_bug))
            tg.start_soon(serve, sock, hold)
            port = sock.getsockname()[1]
            clients = [Channel(await open_tcp(SERVER, port)) for _ in range(SESSIONS)]
            await accepted.wait()
            await then(ours, clients)
            tg.cancel_scope.cancel()
    return ours


async def _until_closed(channel: Channel) -> list[Message]:
    got = []
    while True:
        try:
            got.append(await channel.receive(5))
        except WireError:
            return got


@pytest.mark.parametrize(
    ("batch", "expected"),
    [
        pytest.param(
            [(0, Release()), (1, Release()), (2, Release())],
            [[Release()], [Release()], [Release()]],
            id="one-message-to-every-session",
        ),
        pytest.param(
            [(0, Abort("a")), (1, Ack()), (0, Refuse("b"))],
            [[Abort("a"), Refuse("b")], [Ack()], []],
            id="a-sessions-messages-keep-their-order",
        ),
        pytest.param(
            [(GONE, Release()), (2, Release())], [[], [], [Release()]], id="a-closed-session"
        ),
    ],
)
async def test_each_session_gets_its_messages(
    batch: list[tuple[int, Message]], expected: list[list[Message]]
) -> None:
    received: list[list[Message]] = []

    async def check(ours: Sessions, clients: list[Channel]) -> None:
        await ours.send(batch)
        for conn in list(ours.channels):
            await ours.close(conn)
        received.extend([await _until_closed(client) for client in clients])

    ours = await _sessions(check)
    assert received == expected
    assert ours.counts["messages_sent"] == sum(map(len, expected))


async def _fill(channel: Channel) -> int:
    """Write to ``channel`` until its socket takes no more (its peer is not reading)."""
    written, chunk = 0, b"x" * 65536
    while not (rest := channel.write_nowait(chunk)):
        written += len(chunk)
    return written + len(chunk) - len(rest)


async def test_a_message_waits_for_room_in_order() -> None:
    """Session 0's socket is full: its two messages wait, in order, while session 1 gets its
    own at once; once the member reads, both follow the bytes ahead of them."""
    got: list[Message] = []

    async def check(ours: Sessions, clients: list[Channel]) -> None:
        ahead = await _fill(ours.channels[0])
        async with anyio.create_task_group() as tg:
            batch: list[tuple[int, Message]] = [(0, Abort("a")), (1, Release()), (0, Refuse("b"))]
            tg.start_soon(ours.send, batch)
            assert await clients[1].receive(5) == Release()
            while ahead:
                ahead -= len(await clients[0].stream.receive(min(ahead, 65536)))
            got.extend([await clients[0].receive(5), await clients[0].receive(5)])

    await _sessions(check, Timing(send_timeout=15.0))  # a loaded machine drains slowly
    assert got == [Abort("a"), Refuse("b")]


async def test_a_session_whose_socket_takes_nothing_is_dropped() -> None:
    """Its member reads nothing: past the send timeout the session is closed (its reader then
    reports the loss), and the other sessions got their message meanwhile."""
    others: list[Message] = []

    async def check(ours: Sessions, clients: list[Channel]) -> None:
        await _fill(ours.channels[0])
        await ours.send([(conn, Release()) for conn in range(SESSIONS)])
        with pytest.raises(OSError):
            ours.channels[0].write_nowait(b"\n")  # closed
        others.extend([await clients[1].receive(5), await clients[2].receive(5)])

    await _sessions(check, Timing(send_timeout=0.2))
    assert others == [Release(), Release()]
