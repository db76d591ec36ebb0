"""Addresses waiting for a probe, and the few tasks that probe them.

A bulk round can list thousands of addresses. A task per address parked on a limiter cost a
4,090-peer sweep about a tenth of its CPU; instead at most ``workers`` tasks probe one address
after another, and each exits when none is left, so an idle agent holds none. A few more tasks
(``push_reserve``) probe only pushed addresses, so a peer that said hello is probed at once even
while every worker waits out a connect deadline on a dead address.

A probe reads what a remote sends. One that fails with a bug (an unexpected exception) is
reported by the supervisor and handed to ``gave_up``, so that whoever waits for the address's
result gets one; the worker goes on with the next address.
"""

from __future__ import annotations

import collections
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol

from agent.io.supervisor import Supervisor

__all__ = ["ProbeQueue"]


class Starter(Protocol):
    """Where the workers run: an anyio task group, or the selectors driver's loop."""

    def start_soon(
        self, func: Callable[[bool], Coroutine[Any, Any, None]], arg: bool, /
    ) -> Any: ...


class ProbeQueue:
    def __init__(
        self,
        tg: Starter,
        probe: Callable[[str], Awaitable[None]],
        *,
        workers: int,
        push_reserve: int = 0,
        supervisor: Supervisor,
        gave_up: Callable[[str], None],
    ) -> None:
        self._tg, self._probe = tg, probe
        self._supervisor, self._gave_up = supervisor, gave_up
        self._workers, self._push_reserve = workers, push_reserve
        self._pushed: collections.deque[str] = collections.deque()
        self._listed: collections.deque[str] = collections.deque()
        self._running = 0
        self._running_pushes = 0

    def add(self, address: str, *, pushed: bool = False) -> None:
        """Queue ``address``. A pushed one (a peer that has just said hello from it) goes before
        every listed one: its probe is what releases the barrier in milliseconds, and it must
        not wait for a round of thousands of addresses to drain."""
        (self._pushed if pushed else self._listed).append(address)
        if self._running < self._workers:
            self._running += 1
            self._tg.start_soon(self._work, False)
        elif pushed and self._running_pushes < self._push_reserve:
            self._running_pushes += 1
            self._tg.start_soon(self._work, True)

    async def _work(self, pushes_only: bool) -> None:
        try:
            while self._pushed or (self._listed and not pushes_only):
                address = (self._pushed or self._listed).popleft()
                try:
                    await self._probe(address)
                except Exception as exc:  # a bug: never a cancellation (a BaseException)
                    self._supervisor.bug("probe", address, exc)
                    self._gave_up(address)
        finally:
            if pushes_only:
                self._running_pushes -= 1
            else:
                self._running -= 1
