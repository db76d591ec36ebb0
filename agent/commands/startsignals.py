"""Stop signals that come while the agent starts, before its event loop listens for them.

A container's entrypoint runs as PID 1, and the kernel drops a signal that PID 1 has no handler
for: a SIGTERM sent in the agent's first moments (its imports, reading the pod's files, building
its config: a fraction of a second, more under a CPU limit) was lost, and the pod ran on until
``--timeout`` instead of exiting 143. So the entry point records SIGTERM, SIGINT and SIGHUP from
its first line on; the CLI acts on the first one recorded as soon as it listens itself, or at
once for a command that never does.
"""

from __future__ import annotations

import signal
from types import FrameType

__all__ = [
    "STOPS",
    "coalesce_wakeups",
    "hold",
    "hold_off",
    "ignore",
    "received",
    "release",
    "settle",
]

#: what stops the agent (SIGHUP too: without a handler PID 1 drops it as well)
STOPS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)

_seen: list[int] = []
_ignored: list[bool] = []


def _record(signum: int, _: FrameType | None) -> None:
    if not _seen:  # the first one decides, as it would have
        _seen.append(signum)


def hold() -> None:
    """From now on, record stop signals instead of dropping (PID 1) or dying of them."""
    for signum in STOPS:
        signal.signal(signum, _record)


def coalesce_wakeups(*signums: int) -> None:
    """Let the event loop's wakeup pipe fill up without a word, once it listens for ``signums``.
    asyncio asks CPython to warn when a signal finds the pipe full, and CPython's C handler
    queues that warning through a call that takes a lock, which a handler must not do: a storm
    of SIGTERMs from several senders left the agent asleep for good inside it
    (tests/integration/test_stop_signal_windows.py). A full pipe wakes the loop all the same;
    a byte it drops is a signal among the storm's many (and any signal reaps the workload:
    agent.commands.leave). Set again with ``signums`` blocked: between the two calls one would
    wake nothing."""
    before = signal.pthread_sigmask(signal.SIG_BLOCK, signums)
    try:
        fd = signal.set_wakeup_fd(-1)
        if fd != -1:
            signal.set_wakeup_fd(fd, warn_on_full_buffer=False)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


def hold_off() -> None:
    """Block the stop signals until :func:`ignore`: the exit code is decided, and the event loop
    is about to let its handlers go (asyncio gives each its default action back as it does). A
    mask is the calling thread's: this holds because the agent has no other thread
    (tests/integration/test_exit_barrier.py)."""
    signal.pthread_sigmask(signal.SIG_BLOCK, STOPS)


def ignore() -> None:
    """From now on, and for good, ignore the stop signals (dropping any :func:`hold_off` kept
    pending): the exit code is decided (the workload's, a sidecar's 0 once SIGTERM stopped it)
    and a second SIGTERM (the Job controller deleting the pods of a Job another pod's failure
    failed; the kubelet repeating itself) must not turn it into a death by signal in the
    moments the process takes to exit. :func:`release` keeps them ignored."""
    for signum in STOPS:
        signal.signal(signum, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOPS)
    _ignored.append(True)


def received() -> int | None:
    """The first stop signal recorded since :func:`hold`, if any."""
    return _seen[0] if _seen else None


def release() -> int | None:
    """Give the stop signals back their defaults (SIGINT raises KeyboardInterrupt again) and
    return the first one recorded, if any: for what runs without an event loop listening.
    Signals :func:`ignore` ignored stay ignored."""
    for signum in () if _ignored else STOPS:
        default = signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL
        signal.signal(signum, default)
    # not held off past here: a workload exec'd by this process would inherit the mask
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOPS)
    return received()


def settle(stopped: bool) -> None:
    """Once a barrier's loop has ended, on either driver: a stop signal that decided the exit
    code leaves the rest ignored (:func:`ignore`); else what comes after (outputs, the
    workload's exec) stops as by default (:func:`release`)."""
    if stopped:
        ignore()
    else:
        release()
