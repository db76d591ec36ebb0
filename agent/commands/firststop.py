"""The first of a blocking call's result and a stop signal, for a command with no event loop
of its own (``barrier NAME``): the first stop signal decides its exit code, as in the agent's
other commands.

The call runs in a thread. The stop signals are blocked meanwhile, and another thread takes
them with ``sigwaitinfo``, which gives the lowest-numbered of those pending at once: a SIGINT
then a SIGTERM give the SIGINT. A Python handler cannot tell that order: the kernel runs the
SIGTERM's handler inside the SIGINT's when both are pending as the process wakes, and CPython
sees the SIGTERM first. Blocked signals interrupt nothing, so the call is never cut short by
one (its connect, its read) and a signal is never lost in it; a signal taken, or still
pending, once the call has returned came before the command looked, and decides too.
"""

from __future__ import annotations

import os
import queue
import signal
import threading
from collections.abc import Callable
from typing import TypeVar

from agent.commands.startsignals import STOPS, received

__all__ = ["first_of"]

_T = TypeVar("_T")

#: what stops the waiter: sent by this process to that thread alone
_STOP_WAITING = signal.SIGHUP


def first_of(
    call: Callable[[], _T], interrupt: Callable[[], None]
) -> tuple[_T, None] | tuple[None, int]:
    """(``call()``'s result, None), or (None, the first stop signal) when one came first; then
    ``interrupt()`` is asked to end the call (it is left to end in its thread). The caller's
    signal mask is given back, with no stop signal left pending in it. ``call``'s exception is
    raised as its result would be returned."""
    before = signal.pthread_sigmask(signal.SIG_BLOCK, STOPS)  # the threads inherit it
    try:
        if (early := received() or _pending()) is not None:
            return None, early
        done: queue.SimpleQueue[None] = queue.SimpleQueue()
        taken: list[int] = []
        outcome: list[_T] = []
        failure: list[BaseException] = []
        waiter = _Waiter(taken, done)
        caller = threading.Thread(
            target=_run, args=(call, outcome, failure, done), name="barrier call", daemon=True
        )
        caller.start()
        done.get()  # the call's end, or a signal's
        waiter.stop()
        if (signum := taken[0] if taken else _pending()) is not None:
            interrupt()
            return None, signum
        caller.join()  # it has returned: nothing of it left running
        if failure:
            raise failure[0]
        return outcome[0], None
    finally:
        while _pending() is not None:  # none may reach the caller's handlers once unblocked
            pass
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


class _Waiter:
    """A thread in ``sigwaitinfo`` that records the first stop signal in ``taken``. It lives
    until :meth:`stop`, so that the SIGHUP which stops it is never sent to an ended thread."""

    def __init__(self, taken: list[int], done: queue.SimpleQueue[None]) -> None:
        self._taken = taken
        self._done = done
        self._may_end = threading.Event()
        self._thread = threading.Thread(target=self._take_one, name="stop signals")
        self._thread.start()

    def _take_one(self) -> None:
        info = signal.sigwaitinfo(STOPS)
        if not (info.si_signo == _STOP_WAITING and info.si_pid == os.getpid()):
            self._taken.append(info.si_signo)
            self._done.put(None)
        self._may_end.wait()

    def stop(self) -> None:
        """Ends the wait (a SIGHUP sent to this thread alone, which it knows for ours; one
        still pending as it ends dies with it); what it took is known after."""
        assert self._thread.ident is not None
        signal.pthread_kill(self._thread.ident, _STOP_WAITING)
        self._may_end.set()
        self._thread.join()


def _run(
    call: Callable[[], _T],
    outcome: list[_T],
    failure: list[BaseException],
    done: queue.SimpleQueue[None],
) -> None:
    try:
        outcome.append(call())
    except BaseException as exc:  # raised again in the caller's thread
        failure.append(exc)
    finally:
        done.put(None)


def _pending() -> int | None:
    info = signal.sigtimedwait(STOPS, 0)
    return None if info is None else info.si_signo
