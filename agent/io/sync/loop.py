"""A loop of plain coroutines on ``selectors``: each task waits for one socket, or a time.

A task is an ``async def`` coroutine that awaits :func:`readable`, :func:`writable` or
:func:`sleep_until` (or coroutines that do): each yields a :class:`Wait` to the loop, which
resumes the task when its socket is ready, with ``TimeoutError`` when its deadline passes first
(a sleep just resumes). Every network wait takes a deadline (None only where a session's
keepalive or the whole run's end bounds it). Nothing else is awaited, so the handshake's shared
coroutines (``agent.io.handshakes``) run here as they run under anyio.
"""

from __future__ import annotations

import collections
import contextlib
import heapq
import itertools
import math
import selectors
import socket
from collections.abc import Callable, Coroutine, Generator
from typing import Any

__all__ = [
    "Cancelled",
    "Loop",
    "Task",
    "Wait",
    "checkpoint",
    "readable",
    "sleep_until",
    "writable",
]

_READ, _WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE


class Cancelled(BaseException):
    """Thrown into a task the loop ends (a connection dropped for a newcomer): not a bug."""


class Wait:
    """What a task waits for: ``sock`` readable (or writable), until ``deadline``."""

    __slots__ = ("deadline", "events", "sock")

    def __init__(self, sock: socket.socket | None, events: int, deadline: float | None) -> None:
        self.sock, self.events, self.deadline = sock, events, deadline

    def __await__(self) -> Generator[Wait, None, None]:
        yield self


def readable(sock: socket.socket, deadline: float | None) -> Wait:
    return Wait(sock, _READ, deadline)


def writable(sock: socket.socket, deadline: float | None) -> Wait:
    return Wait(sock, _WRITE, deadline)


def sleep_until(deadline: float) -> Wait:
    return Wait(None, 0, deadline)


def checkpoint() -> Wait:
    """Resumed at the next turn, after the sockets are polled: a task whose socket never runs
    dry (a peer streaming messages) yields here, as anyio's receive does on every call."""
    return Wait(None, 0, None)


class Task:
    __slots__ = ("coro", "on_error", "timer", "wait")

    def __init__(
        self, coro: Coroutine[Any, Any, None], on_error: Callable[[Exception], None]
    ) -> None:
        self.coro, self.on_error = coro, on_error
        self.wait: Wait | None = None
        self.timer = -1  # which heap entry is this task's current deadline


class Loop:
    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.selector = selectors.DefaultSelector()
        self.tasks: set[Task] = set()
        self._ready: collections.deque[tuple[Task, BaseException | None]] = collections.deque()
        self._timers: list[tuple[float, int, Task]] = []
        self._seq = itertools.count()
        #: per file descriptor: the task waiting to read it, and the one waiting to write it
        self._parked: dict[int, list[Task | None]] = {}
        #: per file descriptor: the events the selector has it registered for
        self._events: dict[int, int] = {}
        self._wakers: set[int] = set()  # descriptors that only wake the loop (signals)

    def spawn(self, coro: Coroutine[Any, Any, None], on_error: Callable[[Exception], None]) -> Task:
        """Run ``coro`` from the next turn on; ``on_error`` gets what it raises (a bug)."""
        task = Task(coro, on_error)
        self.tasks.add(task)
        self._ready.append((task, None))
        return task

    def waker(self, sock: socket.socket) -> None:
        """``sock`` only wakes the loop (a signal's wakeup fd): drained at each wake-up."""
        self._wakers.add(sock.fileno())
        self.selector.register(sock, _READ, None)

    def run_ready(self) -> None:
        """Step every task that could go on when called; what they make ready (a checkpoint,
        a spawn) goes at the next turn, after a poll, so no task keeps the loop from the
        sockets, the core's inputs and its deadlines."""
        for _ in range(len(self._ready)):
            task, exc = self._ready.popleft()
            if task in self.tasks:
                self._step(task, exc)

    def _step(self, task: Task, exc: BaseException | None) -> None:
        try:
            wait = task.coro.send(None) if exc is None else task.coro.throw(exc)
        except StopIteration:
            self.tasks.discard(task)
            return
        except Cancelled:
            self.tasks.discard(task)
            return
        except Exception as error:
            self.tasks.discard(task)
            task.on_error(error)
            return
        self._park(task, wait)

    def _park(self, task: Task, wait: Wait) -> None:
        if wait.sock is None and wait.deadline is None:  # a checkpoint
            self._ready.append((task, None))
            return
        task.wait = wait
        if wait.sock is not None:
            fd = wait.sock.fileno()
            if fd < 0:  # closed under it: as a reset connection's read
                self._ready.append((task, OSError(9, "connection closed")))
                task.wait = None
                return
            parked = self._parked.setdefault(fd, [None, None])
            parked[wait.events == _WRITE] = task
            self._register(wait.sock, fd, parked)
        if wait.deadline is not None:
            task.timer = next(self._seq)
            heapq.heappush(self._timers, (wait.deadline, task.timer, task))

    def _register(self, sock: socket.socket, fd: int, parked: list[Task | None]) -> None:
        # What is registered is known here: asking the selector to modify a socket it does not
        # have raises KeyError with the socket's repr, which asks the kernel for both of its
        # addresses (a fifth of a probe's CPU in the loop, once per connection).
        events = (_READ if parked[0] else 0) | (_WRITE if parked[1] else 0)
        was = self._events.get(fd, 0)
        if events == was:
            return
        if not events:
            del self._parked[fd], self._events[fd]
            self.selector.unregister(sock)
            return
        if was:
            self.selector.modify(sock, events, None)
        else:
            self.selector.register(sock, events, None)
        self._events[fd] = events

    def _unpark(self, task: Task) -> None:
        wait, task.wait, task.timer = task.wait, None, -1
        if wait is not None and wait.sock is not None:
            fd = wait.sock.fileno()
            parked = self._parked.get(fd)
            if parked is not None and parked[wait.events == _WRITE] is task:
                parked[wait.events == _WRITE] = None
                self._register(wait.sock, fd, parked)

    def throw(self, task: Task, exc: BaseException) -> None:
        """Resume ``task`` with ``exc`` at the next turn (Cancelled: end it)."""
        if task in self.tasks:
            self._unpark(task)
            self._ready.append((task, exc))

    def forget(self, sock: socket.socket) -> None:
        """``sock`` is about to be closed: whoever waits on it gets the error a closed
        connection gives (as anyio's ``notify_closing``)."""
        fd = sock.fileno()
        parked = self._parked.pop(fd, None) if fd >= 0 else None
        if parked is None:
            return
        del self._events[fd]
        self.selector.unregister(sock)
        for task in parked:
            if task is not None:
                task.wait, task.timer = None, -1
                self._ready.append((task, OSError(9, "connection closed")))

    def poll(self, until: float) -> None:
        """Wait for sockets until ``until`` at the latest (or the first task deadline)."""
        if self._ready:
            until = self.clock()
        elif self._timers:
            until = min(until, self._timers[0][0])
        # no deadline at all (no --timeout, nothing pending): until a socket or a signal
        timeout = None if math.isinf(until) else max(0.0, until - self.clock())
        for key, events in self.selector.select(timeout):
            fd = key.fd
            if fd in self._wakers:
                _drain(key.fileobj)
                continue
            parked = self._parked.get(fd)
            for index, bit in enumerate((_READ, _WRITE)):
                if parked is not None and events & bit and (task := parked[index]) is not None:
                    self._unpark(task)
                    self._ready.append((task, None))
        self._expire()

    def _expire(self) -> None:
        now = self.clock()
        while self._timers and self._timers[0][0] <= now:
            _, timer, task = heapq.heappop(self._timers)
            if task.timer != timer or task not in self.tasks:
                continue  # resumed already by its socket
            sleeping = task.wait is not None and task.wait.sock is None
            self._unpark(task)
            self._ready.append((task, None if sleeping else TimeoutError()))

    def close(self) -> None:
        """End every task (its ``finally`` blocks close its sockets) and the selector."""
        for task in list(self.tasks):
            # A task's clean-up that fails at the end must not replace the barrier's outcome:
            # its sockets are closed with the process in a moment anyway.
            with contextlib.suppress(Exception):
                task.coro.close()
        self.tasks.clear()
        self.selector.close()


def _drain(sock: Any) -> None:
    try:
        while sock.recv(4096):
            pass
    except OSError:
        pass
