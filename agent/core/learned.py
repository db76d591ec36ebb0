"""Addresses bulk discovery learnt from peers, not from the Service's answer, and when each is
probed again (``agent.core.vouching``).

Past a cut Service answer a pod learns most peers' addresses from its coordinator (a member) or
its members' reports (the coordinator). Each is probed at once; one whose pod does not answer
yet (its agent not listening: a Job's pods start over seconds) is probed again on a timer,
every ``Timing.learned_retry`` seconds or so (equal jitter) while its peer is unreached, and at
once when its peer says hello from there. They are never asked for by name instead: a chain of
reports stopped at a pod that is late goes on once that pod is up and its ring neighbour
reaches it, or once the coordinator's check of the lowest index not vouched for answers
(``agent.core.recheck``); asking for every name the cut left out, from every pod, was the retry
storm that kept a 128-pod Job from releasing. Pure.
"""

from __future__ import annotations

import math
from collections.abc import Callable

__all__ = ["Learned"]


class Learned:
    def __init__(self, *, retry: float, rand: Callable[[], float]) -> None:
        self._retry, self._rand = retry, rand
        self._index_of: dict[str, int] = {}  # address -> the index it was vouched for
        self._next = math.inf  # when the addresses of unreached peers are probed again

    def add(self, index: int, address: str, now: float) -> bool:
        """``address`` vouched for ``index``; True when it is new."""
        if self._index_of.get(address) == index:
            return False
        self._index_of[address] = index
        self._next = min(self._next, now + self._retry)
        return True

    def knows(self, address: str) -> bool:
        return address in self._index_of

    def index_of(self, address: str) -> int | None:
        """The index ``address`` was vouched for (None: not learnt)."""
        return self._index_of.get(address)

    def take_due(self, now: float, unreached: Callable[[int], bool]) -> list[str]:
        """The learnt addresses of peers still unreached, when the timer is due (one pass every
        retry interval, not per event)."""
        if now < self._next:
            return []
        due = [a for a, i in self._index_of.items() if unreached(i)]
        self._next = now + self._retry * (0.5 + 0.5 * self._rand()) if due else math.inf
        return due

    def next_wakeup(self) -> float:
        return self._next
