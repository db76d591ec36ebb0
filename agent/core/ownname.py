"""Whether this instance is still the one its own name leads to, or was replaced.

Each pod counts its own index only when its own instance answers at its own name
(``agent.core.answers.NameAttempt``). A pod that Kubernetes replaced while its old instance runs
on (a terminating pod, a pod on a node cut off from the API server) has a new instance elsewhere,
and DNS moves the name there: the old instance then finds a newer instance of its index at its
own name (``Cause.REPLACED``). From then on it never counts itself, so nobody is released with
it, it cannot join a release late, and as index 0 it releases nobody (``Barrier.replaced``);
its members leave it for the coordinator DNS gives once they hear of the new instance.

It asks its name again at once when it hears of a newer instance of its index (a hello, a
probe's reply), and before it joins a release a peer tells it of (a late joiner returns only once
it has itself reached every index: its own name too, now). Index 0, which holds the members'
sessions, also asks while it waits with every peer reached, since nobody may tell it otherwise
(the new instance never probes an address DNS no longer lists): ``timing.look_around`` after,
then twice as long each time, up to ``timing.look_around_cap``; the first not within
``timing.refused_reuse`` (CoreDNS's TTL) of its name first leading here, and at most
``timing.own_checks`` in one wait: past them it asks on hearing of a newer instance of its
index (a hello, a probe's reply: the new instance's targets are this one's), as every pod
does. Pure.
"""

from __future__ import annotations

import math

from agent.core.barrier import Barrier
from agent.core.causes import Cause, Failure
from agent.core.effects import Attempt, Effect, Report
from agent.core.log import LogKind, LogLevel, LogLine
from agent.core.reach import Reach
from agent.core.timing import Timing
from agent.protocol.instance import newer
from agent.protocol.wire import Identity

__all__ = ["OwnName"]


class OwnName:
    """``checks``: whether the probe says which instance answers (else nothing here can be
    found out); ``name``: this pod's name, as its lines show it."""

    def __init__(
        self,
        me: Identity,
        *,
        reach: Reach,
        barrier: Barrier,
        timing: Timing,
        checks: bool,
        name: str,
    ) -> None:
        self.me, self.reach, self.barrier = me, reach, barrier
        self._checks, self._name = checks, name
        self._first, self._cap = timing.look_around, timing.look_around_cap
        #: a check this soon after the name first led here would hear DNS's cached answer:
        #: the root asked its own name twice in a 100,000-pod run released seconds later
        self._fresh = timing.refused_reuse
        #: checks left in this wait: the gap stops doubling at its cap, so a coordinator that
        #: waited minutes for late members asked its name every 16 s (16 times over 375 s in the
        #: in-memory cluster, 64 pods launched over 600 s)
        self._most = self._left = timing.own_checks
        self._gap = self._first
        #: when index 0, waiting with everyone reached, asks its name next
        self.at = math.inf
        #: what its own name answered that says this instance was replaced (None: it was not)
        self.replaced: Failure | None = None
        self._told = False  # a peer said the barrier passed: joined once the name answers

    def waiting(self, now: float) -> None:
        """Every peer is reached and the verdict awaited: the first check is due a moment on."""
        self.at, self._gap, self._left = now + self._first, self._first, self._most

    def poll(self, now: float) -> list[Effect]:
        """Index 0 waiting: its check, when due (the next one twice as far off, up to the cap)."""
        if now < self.at:
            return []
        if (answered := self.reach.peers[self.me.index].reached_at) is not None and (
            now < answered + self._fresh and self.reach.fresh_at(self.me.index, now, self._fresh)
        ):  # its name answered a moment ago: cluster DNS gives that answer again until then
            self.at = answered + self._fresh
            return []
        self._gap = min(2 * self._gap, self._cap)
        self.at = now + self._gap if self.replaced is None else math.inf
        self._left -= 1
        if self._left <= 0:
            self.at = math.inf  # from now on it asks on hearing of a newer instance only
        return self.check(now)

    def check(self, now: float) -> list[Effect]:
        """Ask the name again, if the probe says which instance answers and there is no verdict."""
        if self.barrier.verdict is not None or not self._checks or self.replaced is not None:
            return []
        if self.reach.recheck(self.me.index):
            return [Attempt(self.me.index, self.me.instance)]
        self.reach.nudge(self.me.index, now)  # not reached, or an attempt out: its answer tells
        return []

    def heard(self, instance: str, now: float) -> list[Effect]:
        """A vouched-for hello from ``instance`` of this pod's index: a newer one may have
        replaced this one, so the name is asked now."""
        if instance and newer(instance, self.me.instance):
            return self.check(now)
        return []

    def counts(self) -> bool:
        """Whether this instance may count for its own index (not once it was replaced)."""
        return self.replaced is None

    def told_released(self, now: float) -> list[Effect]:
        """A peer says the barrier passed: joined once the own name still leads here (at once
        when the probe cannot tell instances apart)."""
        side = self.barrier.side
        if side is None or self.barrier.verdict is not None:
            return []
        if not self._checks:
            return self.barrier.act(side.peer_released(now), now)
        self._told = True
        return self.check(now)

    def answered(self, failure: Failure | None, now: float) -> list[Effect]:
        """An attempt of the own name landed: reached (``failure`` None) or why not. Reached,
        a release a peer told of is joined; replaced (the first time it says so, and it stays
        so: an older instance never replaces a newer), this instance stops counting itself."""
        side = self.barrier.side
        if failure is None:
            if not self._told or side is None or self.replaced is not None:
                return []
            self._told = False
            return self.barrier.act(side.peer_released(now), now)
        if failure.cause is not Cause.REPLACED or self.replaced is not None:
            return []
        self.replaced, self.at = failure, math.inf
        if self.barrier.verdict is not None:
            return []
        self.reach.forget(self.me.index, now)
        return [Report(self._replaced_line(failure)), *self.barrier.replaced(now)]

    def _replaced_line(self, failure: Failure) -> LogLine:
        line = (
            f"{self._name} (this pod) was {failure.reason}: this instance no longer counts "
            "itself, so nobody is released with it and it releases nobody; it ends at --timeout"
        )
        return LogLine(LogKind.REPLACED, line, level=LogLevel.WARNING)
