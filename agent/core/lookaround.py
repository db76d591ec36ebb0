"""A coordinator that has reached everyone, and still waits, looks around.

Members that have not arrived at this coordinator may have been released by another instance
of index 0 (an old pod still running). Probing a few of them at a time, at doubling intervals,
hears that from their hello (its released flag), so this instance is released too instead of
waiting for members that will never arrive. Pure: the core says when and whom to probe.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from agent.core.timing import Timing

__all__ = ["LookAround"]

#: members probed a look, the rest waiting for the next look, in turn: each may cost a query
#: of its name, so a look asks DNS at most this many whatever the number of groups (the root's
#: members are the group coordinators, ~√N of them: with 64 a look, the root of 300 pods asked
#: up to 17 names a look while its groups were late, at 100,000 pods 64). One released member's
#: hello releases this instance, so a look at a few is enough for that; a member whose session
#: is with an older instance of index 0 is told within ⌈members / 8⌉ looks
_BATCH = 8


class LookAround:
    """Paced by ``timing.look_around`` (the first look, after every peer is reached) up to
    ``timing.look_around_cap``, doubling."""

    def __init__(self, timing: Timing) -> None:
        self.at = math.inf  # when the next look is due
        self._first, self._cap = timing.look_around, timing.look_around_cap
        self._gap = self._first
        self._from = 0  # where the next batch starts among the members that have not arrived

    def start(self, now: float) -> None:
        """Every peer is reached: the first look is due a moment from now."""
        self.at, self._gap = now + self._first, self._first

    def take_batch(self, waiting: Sequence[int], now: float) -> list[int]:
        """A look is due: the next few of ``waiting`` (the members that have not arrived), in
        turn, so that every one is looked at in time however many there are."""
        self._gap = min(2 * self._gap, self._cap)
        self.at = now + self._gap
        if not waiting:
            return []
        start = self._from % len(waiting)
        batch = [*waiting[start:], *waiting[:start]][:_BATCH]
        self._from = start + len(batch)
        return batch
