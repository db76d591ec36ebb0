"""The workload as peer-agent's child: started in its own process group, signalled, reaped.

What tini does for a container, for ``run --exit-barrier`` (where peer-agent stays PID 1 instead
of ``exec``-ing the workload): the signals a container gets (SIGTERM on deletion, SIGINT, SIGHUP,
SIGUSR1/2) go on to the workload's whole process group, and every child that ends is reaped,
the workload's own and orphans re-parented to PID 1, so none stays a zombie.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Mapping, Sequence

import anyio

from agent.commands.inherited import PYTHON_IGNORES
from agent.exitcodes import signal_exit_code

__all__ = ["FORWARDED", "PYTHON_IGNORES", "Workload", "spawn"]

FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2)
#: reset to their default in the workload: those, and the handlers of the event loop must not
#: be inherited as "ignored" either
_DEFAULTED = (*PYTHON_IGNORES, signal.SIGCHLD, *FORWARDED)


def spawn(argv: Sequence[str], env: Mapping[str, str]) -> int:
    """Start ``argv`` (searched on PATH) as the leader of a process group of its own, with no
    signal blocked; its pid. OSError (FileNotFoundError: not found) when it cannot start."""
    return os.posix_spawnp(
        argv[0],
        list(argv),
        dict(env),
        setpgroup=0,
        setsigdef=_DEFAULTED,
        setsigmask=(),
    )


class Workload:
    """The workload, once ``started``: ``reap()`` on every SIGCHLD (from the start: orphans
    too), ``forward()`` every other signal while it runs."""

    def __init__(self) -> None:
        self.pid: int | None = None
        self.code: int | None = None  # its exit code, 128+n when signal n ended it
        self.ended = anyio.Event()

    def started(self, pid: int) -> None:
        self.pid = pid
        self.reap()  # it may have ended already, its SIGCHLD handled before its pid was known

    @property
    def running(self) -> bool:
        return self.pid is not None and self.code is None

    def reap(self) -> None:
        """Collect every child that has ended (SIGCHLDs coalesce: one may stand for many)."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid == self.pid:
                code = os.waitstatus_to_exitcode(status)
                self.code = code if code >= 0 else signal_exit_code(-code)
                self.ended.set()

    def forward(self, signum: int) -> None:
        """Send ``signum`` to the workload's process group, while its leader has not been
        reaped (after that its id may be another process's)."""
        if self.pid is None or self.code is not None:
            return
        # the group gone: it is ending, its SIGCHLD comes
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signum)
