"""The selectors driver's loop (``agent.io.sync.loop``): each wait ends by its socket, its
deadline, or the socket's closing; a loop with no deadline at all waits for a socket."""

from __future__ import annotations

import math
import socket
import time

import pytest

from agent.io.sync.loop import Loop, checkpoint, readable, sleep_until

pytestmark = pytest.mark.timeout(20)


def _bug(exc: Exception) -> None:
    raise AssertionError(f"a task failed: {exc!r}")


def test_a_wait_ends_by_its_socket_or_by_its_deadline() -> None:
    loop = Loop(time.monotonic)
    seen: list[str] = []
    a, b = socket.socketpair()
    quiet, _other = socket.socketpair()

    async def reader(sock: socket.socket, name: str) -> None:
        try:
            await readable(sock, loop.clock() + 0.2)
            seen.append(f"{name} readable")
        except TimeoutError:
            seen.append(f"{name} late")

    loop.spawn(reader(a, "a"), _bug)
    loop.spawn(reader(quiet, "quiet"), _bug)
    loop.run_ready()
    b.send(b"x")
    while len(seen) < 2:
        loop.poll(loop.clock() + 1.0)
        loop.run_ready()
    assert seen == ["a readable", "quiet late"]
    loop.close()
    for s in (a, b, quiet, _other):
        s.close()


def test_closing_a_socket_wakes_its_waiter_with_an_error() -> None:
    loop = Loop(time.monotonic)
    seen: list[str] = []
    a, b = socket.socketpair()

    async def reader() -> None:
        try:
            await readable(a, None)
        except OSError:
            seen.append("closed")

    loop.spawn(reader(), _bug)
    loop.run_ready()
    loop.forget(a)
    a.close()
    loop.run_ready()
    assert seen == ["closed"]
    loop.close()
    b.close()


def test_a_loop_without_any_deadline_waits_for_a_socket() -> None:
    """The core's next wake-up is infinite with no --timeout and nothing pending: select then
    waits for a socket (it raised OverflowError, rounding infinity to milliseconds)."""
    loop = Loop(time.monotonic)
    waker, poke = socket.socketpair()
    waker.setblocking(False)
    loop.waker(waker)
    poke.send(b"\0")
    loop.poll(math.inf)  # returns: the waker is readable
    loop.close()
    waker.close()
    poke.close()


def test_a_sleep_resumes_without_an_error() -> None:
    loop = Loop(time.monotonic)
    seen: list[str] = []

    async def sleeper() -> None:
        await sleep_until(loop.clock() + 0.01)
        seen.append("woke")

    loop.spawn(sleeper(), _bug)
    loop.run_ready()
    while not seen:
        loop.poll(loop.clock() + 1.0)
        loop.run_ready()
    loop.close()


def test_a_task_that_never_runs_dry_leaves_the_others_their_turn() -> None:
    """A session whose peer keeps the socket full checkpoints after each message: one turn
    steps it once, so the sockets, the core and its deadlines come round (review 11: it held
    the loop past the agent's own --timeout)."""
    loop = Loop(time.monotonic)
    seen: list[str] = []

    async def streaming() -> None:
        while True:
            seen.append("message")
            await checkpoint()

    async def other() -> None:
        seen.append("other")

    loop.spawn(streaming(), _bug)
    loop.spawn(other(), _bug)
    loop.run_ready()  # returns: it stepped each task once
    assert seen == ["message", "other"]
    loop.poll(loop.clock() + 1.0)  # a checkpointed task makes the poll return at once
    loop.run_ready()
    assert seen == ["message", "other", "message"]
    loop.close()
