"""Whether this instance is still the one its own name leads to, or was replaced.

Each pod counts its own index only when its own instance answers at its own name
(``agent.core.answers.NameAttempt``). A pod that Kubernetes replaced while its old instance runs
on (a terminating pod, a pod on a node cut off from the API server) has a new instance elsewhere,
and DNS moves the name there: the old instance then finds a newer instance of its index at its
own name (``Cause.REPLACED``). From then on it does not count itself, so nobody is released with
it and, as index 0, it releases nobody (``Coordinator.replaced``).

It asks its name again at once when it hears of a newer instance of its index (a hello, a
probe's reply). Index 0, which holds the members' sessions, also asks while it waits with every
peer reached, since nobody may tell it otherwise (the new instance never probes an address DNS
no longer lists): ``timing.look_around`` after, then twice as long each time, up to
``timing.look_around_cap``. Pure: the agent says when it waits and what the answers were.
"""

from __future__ import annotations

import math

from agent.core.causes import Cause, Failure
from agent.core.timing import Timing
from agent.protocol.instance import newer

__all__ = ["OwnName"]


class OwnName:
    def __init__(self, instance: str, timing: Timing) -> None:
        self._instance = instance
        self._first, self._cap = timing.look_around, timing.look_around_cap
        self._gap = self._first
        #: when index 0, waiting with everyone reached, asks its name next
        self.at = math.inf
        #: what its own name answered that says this instance was replaced (None: it was not)
        self.replaced: Failure | None = None

    def waiting(self, now: float) -> None:
        """Every peer is reached and the verdict awaited: the first check is due a moment on."""
        self.at, self._gap = now + self._first, self._first

    def take_due(self, now: float) -> bool:
        """A check is due now (the next one is then twice as far off, up to the cap)."""
        if now < self.at:
            return False
        if self.replaced is not None:  # nothing left to find out
            self.at = math.inf
            return False
        self._gap = min(2 * self._gap, self._cap)
        self.at = now + self._gap
        return True

    def heard(self, instance: str) -> bool:
        """A hello from ``instance`` of this pod's index, vouched for: True when it is newer
        than this one (ask the name now: it may lead there)."""
        return self.replaced is None and bool(instance) and newer(instance, self._instance)

    def answered(self, failure: Failure) -> bool:
        """An attempt of its own name failed with ``failure``: True the first time it says this
        instance was replaced (which stays so: an older instance never replaces a newer)."""
        if failure.cause is not Cause.REPLACED or self.replaced is not None:
            return False
        self.replaced, self.at = failure, math.inf
        return True
