"""Nothing a remote sends may end the process: a task serving one remote runs supervised.

A handler that raises anything unexpected (an ``Exception``: never a cancellation, which is a
``BaseException`` on every backend, nor ``KeyboardInterrupt``/``SystemExit``) is a bug. The
supervisor closes that one connection, counts the bug, reports it with the peer's address and
where it was raised (at most one line per ``every`` seconds; the ones not shown are counted in
the next), and the agent lives on. ``bugs`` is reported at exit. A failure of the system, not of
the code (``accept()`` out of descriptors), is reported the same way, not counted as a bug.

Use::

    supervisor = Supervisor(report)
    tg.start_soon(supervisor.connection, "contact", handler, stream, peer)  # closes on a bug
    try:                                                        # a task that is not a connection
        await work()
    except Exception as exc:
        supervisor.bug("probe", address, exc)
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from agent.core.log import LogKind, LogLevel, LogLine, Reporter, printable

if TYPE_CHECKING:  # both drivers report through it; only the anyio one runs `connection`
    import anyio.abc

__all__ = ["Supervisor"]

S = TypeVar("S", bound="anyio.abc.AsyncResource")


class Supervisor:
    def __init__(
        self,
        report: Reporter,
        *,
        clock: Callable[[], float] = time.monotonic,
        every: float = 5.0,
    ) -> None:
        self._report, self._clock, self._every = report, clock, every
        #: per kind of line: when one was last shown, how many were not shown since
        self._shown: dict[str, tuple[float, int]] = {}
        #: handler bugs caught so far (each closed only its own connection)
        self.bugs = 0

    def _due(self, line: str) -> str | None:
        """None when a ``line`` was shown less than ``every`` seconds ago (this one is
        counted), else what to add to it about those not shown."""
        now = self._clock()
        shown_at, unshown = self._shown.get(line, (-math.inf, 0))
        if now < shown_at + self._every:
            self._shown[line] = (shown_at, unshown + 1)
            return None
        self._shown[line] = (now, 0)
        return f" (and {unshown} more since the last)" if unshown else ""

    def failure(self, what: str, exc: OSError) -> None:
        """Report that ``what`` failed for want of a system resource; the caller retries."""
        if (more := self._due("failure")) is not None:
            error = printable(exc.strerror or str(exc))
            line = f"{what} failed: {error}; retrying{more}"
            self._report(LogLine(LogKind.FAILURE, line, level=LogLevel.WARNING))

    def bug(self, kind: str, peer: str, exc: Exception) -> None:
        """Count and report one bug in a ``kind`` handler serving ``peer`` (an address)."""
        self.bugs += 1
        if (more := self._due("bug")) is None:
            return
        import traceback  # a bug's line only: with linecache and tokenize, 3 ms of every start

        where = ""
        if frames := traceback.extract_tb(exc.__traceback__):
            where = f" at {frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno}"
        # The text may carry what the peer sent: escaped and bounded like anything remote.
        error = printable(f"{type(exc).__name__}: {exc}", limit=200)
        self._report(
            LogLine(
                LogKind.BUG,
                f"bug: a {kind} handler failed for {printable(peer) or 'an unknown peer'}: "
                f"{error}{where}; only that connection was closed; please report it{more}",
                {"kind": kind, "peer": peer, "error": type(exc).__name__, "bugs": self.bugs},
                level=LogLevel.ERROR,
            )
        )

    async def connection(
        self, kind: str, handler: Callable[[S], Awaitable[None]], stream: S, peer: str
    ) -> None:
        """Run ``handler(stream)``; a bug in it closes ``stream`` and nothing else."""
        import anyio  # the anyio driver's: imported by then

        try:
            await handler(stream)
        except Exception as exc:
            self.bug(kind, peer, exc)
            with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                await stream.aclose()
