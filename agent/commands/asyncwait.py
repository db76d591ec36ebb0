"""The anyio driver's event loop for a command: ``anyio.run``, stop signals, the GC's start.

Imported only when a command runs on the anyio driver (``agent.commands.drivers``): the
selectors driver's ``wait`` imports neither anyio nor asyncio.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio
import anyio.abc

from agent.commands import lazyssl, startsignals
from agent.commands.collecting import collect_garbage_from_now
from agent.errors import leaf_error

__all__ = ["run_async", "run_collecting"]

_T = TypeVar("_T")


async def _collecting(work: Callable[[], Awaitable[_T]]) -> _T:
    collect_garbage_from_now()
    return await work()


async def _until_signal(work: Callable[[], Awaitable[_T]]) -> tuple[_T | None, int | None]:
    """Run ``work``; SIGTERM, SIGINT or SIGHUP cancels it promptly and is returned instead,
    as is one that came while the agent started (``startsignals``)."""
    collect_garbage_from_now()
    result: _T | None = None
    received: int | None = None
    async with anyio.create_task_group() as tg:

        async def watch(*, task_status: anyio.abc.TaskStatus[None]) -> None:
            nonlocal received
            with anyio.open_signal_receiver(*startsignals.STOPS) as signals:
                startsignals.coalesce_wakeups(*startsignals.STOPS)
                task_status.started()
                early = startsignals.received()
                if early is not None:
                    received = early
                    startsignals.hold_off()
                    tg.cancel_scope.cancel()
                    return
                async for signum in signals:
                    received = int(signum)
                    # The first decides (a sidecar's 0 for SIGTERM): another one while the loop
                    # shuts down must not kill the process by the default action it gets back.
                    startsignals.hold_off()
                    tg.cancel_scope.cancel()
                    return

        await tg.start(watch)
        result = await work()
        tg.cancel_scope.cancel()
    return result, received


def run_async(work: Callable[[], Awaitable[_T]]) -> tuple[_T | None, int | None]:
    stopped = False
    lazyssl.defer()
    try:
        result, signum = anyio.run(_until_signal, work)
        stopped = signum is not None
        return result, signum
    except BaseExceptionGroup as group:
        raise leaf_error(group) from None
    finally:
        startsignals.settle(stopped)


def run_collecting(work: Callable[[], Awaitable[_T]]) -> _T:
    """``anyio.run`` of ``work`` (which handles the stop signals itself), the GC on from its
    start; a task group's lone error raised as itself."""
    lazyssl.defer()
    try:
        return anyio.run(_collecting, work)
    except BaseExceptionGroup as group:
        raise leaf_error(group) from None
    finally:
        startsignals.release()
