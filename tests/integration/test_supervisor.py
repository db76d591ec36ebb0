"""The supervisor: a bug in one connection's handler closes that connection, is counted and
reported (rate-limited, escaped), and never reaches the task group; cancellation passes."""

from __future__ import annotations

import socket

import anyio
import pytest

from agent.core.log import LogKind, LogLine
from agent.io.supervisor import Supervisor
from agent.io.tcp import TCPStream

pytestmark = pytest.mark.timeout(10)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def _fails(stream: TCPStream) -> None:
    await stream.send(b"half a reply")
    raise ValueError("line\nforged: barrier released\x1b[2J")


@pytest.mark.asyncio
async def test_a_bug_closes_only_its_connection_and_is_reported_escaped() -> None:
    events: list[LogLine] = []
    supervisor = Supervisor(events.append)
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    with theirs:
        async with anyio.create_task_group() as tg:
            tg.start_soon(supervisor.connection, "contact", _fails, TCPStream(ours), "198.18.0.7")
        theirs.settimeout(5)
        assert theirs.recv(100) == b"half a reply"
        assert theirs.recv(100) == b""  # closed by the supervisor
    assert supervisor.bugs == 1
    [event] = events
    assert event.kind is LogKind.BUG and event.fields["peer"] == "198.18.0.7"
    assert event.message.startswith("bug: a contact handler failed for 198.18.0.7: ValueError: ")
    assert "test_supervisor.py:" in event.message  # where it was raised
    assert event.message.isprintable(), event.message  # no forged line, no terminal escape
    assert "\\nforged" in event.message


@pytest.mark.asyncio
async def test_bugs_are_counted_each_but_reported_at_most_once_per_interval() -> None:
    events: list[LogLine] = []
    clock = Clock()
    supervisor = Supervisor(events.append, clock=clock, every=5.0)
    for _ in range(4):
        supervisor.bug("health", "127.0.0.1", RuntimeError("x"))
    clock.now += 5.0
    supervisor.bug("session", "127.0.0.2", RuntimeError("y"))
    assert supervisor.bugs == 5
    assert len(events) == 2
    assert "(and 3 more since the last)" in events[1].message
    assert events[1].fields["bugs"] == 5


@pytest.mark.asyncio
async def test_a_cancellation_is_not_a_bug() -> None:
    events: list[LogLine] = []
    supervisor = Supervisor(events.append)
    started = anyio.Event()

    async def waits(stream: TCPStream) -> None:
        started.set()
        await anyio.sleep_forever()

    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    with theirs, ours:
        async with anyio.create_task_group() as tg:
            tg.start_soon(supervisor.connection, "contact", waits, TCPStream(ours), "x")
            await started.wait()
            tg.cancel_scope.cancel()
    assert supervisor.bugs == 0 and events == []
