"""The selectors driver for a command: its loop, woken by the stop signals, and the GC's start.

The signals stay recorded by ``startsignals`` (its handlers from the agent's first line); a
wakeup descriptor wakes the loop's select for each, and the loop stops at its next turn. What
comes after (outputs, the workload's exec) sees them as the anyio driver leaves them.
"""

from __future__ import annotations

import signal
import socket

from agent.commands import startsignals
from agent.commands.collecting import collect_garbage_from_now
from agent.config.model import Config
from agent.core.log import Reporter
from agent.core.outcome import Outcome
from agent.io.supervisor import Supervisor
from agent.io.sync.runner import serve_and_wait

__all__ = ["run_sync"]


def _stopped() -> bool:
    return startsignals.received() is not None


def run_sync(
    config: Config, *, report: Reporter, supervisor: Supervisor
) -> tuple[Outcome | None, int | None]:
    """The barrier's outcome, or the stop signal that came first (as ``run_async``)."""
    reader, writer = socket.socketpair()
    stopped = False
    try:
        for end in (reader, writer):
            end.setblocking(False)
        before = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
        try:
            collect_garbage_from_now()
            outcome = serve_and_wait(
                config, report=report, supervisor=supervisor, stopped=_stopped, waker=reader
            )
        finally:
            signal.set_wakeup_fd(before)
        # A signal recorded by now decides, even past the release: the pod was told to stop
        # before its outputs or its workload (the anyio driver cancels the same way).
        signum = startsignals.received()
        stopped = signum is not None
        return (None, signum) if stopped else (outcome, None)
    finally:
        reader.close()
        writer.close()
        startsignals.settle(stopped)
