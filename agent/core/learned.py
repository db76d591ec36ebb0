"""Addresses bulk discovery learnt from peers, not from the Service's answer, and when each is
probed again (``agent.core.vouching``).

Past a cut Service answer a pod learns most peers' addresses from its coordinator (a member) or
its members' reports (the coordinator). Each is probed at once; one whose pod does not answer
yet (its agent not listening: a Job's pods start over seconds) is probed again on a timer,
``Timing.learned_retry`` seconds or so later (equal jitter), then twice as long after each pass
up to ``Timing.learned_retry_cap``, while its peer is a target not reached; and at once when
its peer says hello from there (a target targets this pod too: its hello is what finds it up).
A peer that is not a target is never counted reached, so its address is probed once and no
more (the root of 1,000 probed pods 3-5, up and not its targets, every 1-2 s). Never asked by name
instead: a chain of reports stopped at a pod that is late goes on once that pod is up and its
ring neighbour reaches it, or once the coordinator's check of the lowest index not vouched for
answers (``agent.core.recheck``); asking for every name the cut left out, from every pod, was
the retry storm that kept a 128-pod Job from releasing. Pure.
"""

from __future__ import annotations

import math
from collections.abc import Callable

__all__ = ["Learned"]


class Learned:
    def __init__(
        self, *, retry: float, rand: Callable[[], float], cap: float | None = None
    ) -> None:
        self._retry, self._rand = retry, rand
        self._cap = retry if cap is None else cap
        self._gap = retry  # the next pass's interval: doubles with each pass, anew with an address
        self._index_of: dict[str, int] = {}  # address -> the index it was vouched for
        self._next = math.inf  # when the addresses of unreached peers are probed again

    def add(self, index: int, address: str, now: float) -> bool:
        """``address`` vouched for ``index``; True when it is new."""
        if self._index_of.get(address) == index:
            return False
        self._index_of[address] = index
        self._next, self._gap = min(self._next, now + self._retry), self._retry
        return True

    def knows(self, address: str) -> bool:
        return address in self._index_of

    def index_of(self, address: str) -> int | None:
        """The index ``address`` was vouched for (None: not learnt)."""
        return self._index_of.get(address)

    def take_due(self, now: float, unreached: Callable[[int], bool]) -> list[str]:
        """The learnt addresses of peers still unreached, when the timer is due (one pass an
        interval, not per event)."""
        if now < self._next:
            return []
        due = [a for a, i in self._index_of.items() if unreached(i)]
        self._next = now + self._gap * (0.5 + 0.5 * self._rand()) if due else math.inf
        self._gap = min(2 * self._gap, self._cap)
        return due

    def next_wakeup(self) -> float:
        return self._next
