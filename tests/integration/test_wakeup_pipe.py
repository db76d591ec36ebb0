"""The event loop's wakeup pipe under a storm of signals (agent.commands.startsignals).

asyncio asks CPython to warn when a signal finds its wakeup pipe full, and CPython's C handler
queues that warning through a call that takes a lock, which a signal handler must not do: an
outside review's SIGTERM storm left an agent asleep for good on that lock. Here the pipe is
filled in-process, without the loop draining it: where the warning path runs, CPython reports
the full pipe as an unraisable error; once the agent has let the pipe coalesce, it never does.
"""

from __future__ import annotations

import signal
import sys

import anyio
import pytest

from agent.commands.startsignals import coalesce_wakeups

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(20)]

# far more than a socketpair's buffer holds one-byte writes
_STORM = 20_000


async def _storm(coalesce: bool) -> list[str]:
    """What CPython reported as unraisable while a storm filled the pipe (the hook is set here,
    in the test's call: pytest sets its own for the call)."""
    seen: list[str] = []
    before = sys.unraisablehook
    sys.unraisablehook = lambda info: seen.append(f"{info.err_msg}: {info.exc_value!r}")
    try:
        await _fill(coalesce)
    finally:
        sys.unraisablehook = before
    return seen


async def _fill(coalesce: bool) -> None:
    with anyio.open_signal_receiver(signal.SIGUSR1) as signals:
        if coalesce:
            coalesce_wakeups(signal.SIGUSR1)
        for _ in range(_STORM):  # no await: the loop never drains the pipe meanwhile
            signal.raise_signal(signal.SIGUSR1)
        async for _ in signals:  # the storm arrived, as one or more signals
            break
        await anyio.sleep(0)  # the loop runs what CPython queued for it


async def test_a_storm_that_fills_the_wakeup_pipe_takes_no_lock_in_the_handler() -> None:
    assert await _storm(coalesce=True) == []


async def test_without_it_the_full_pipe_takes_the_warning_path() -> None:
    """The test above can fail: asyncio's own setting reaches the warning path."""
    seen = await _storm(coalesce=False)
    assert any("BlockingIOError" in line for line in seen), seen
