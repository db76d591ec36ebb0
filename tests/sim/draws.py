"""What a simulated cluster draws besides the network's delays (cluster.py): each pod's clock
and its instances' ids, how long workloads run, when clients ask for named barriers. Drawn from
a generator of their own, so a schedule's network stays what its seed made it."""

from __future__ import annotations

import random

from agent.protocol.instance import instance_id

__all__ = ["Draws"]

#: the low bits of a simulated instance's tie-break hold its index (modulo 1,024): a trace
#: names whose it is
INDEX_BITS = 10
_INDEX_MASK = (1 << INDEX_BITS) - 1


class Draws:
    def __init__(self, seed: int, *, clock_skew: float, workload: float) -> None:
        self._rng = random.Random(f"draws-{seed}")
        self.clock_skew, self.workload = clock_skew, workload
        self._started: dict[int, int] = {}  # the latest start time of an instance of each index
        self._issued: set[str] = set()

    def clock(self) -> float:
        """How far a new pod's node clock is off, in whole milliseconds (pods often start at the
        same millisecond, so some start times are equal)."""
        skew = self.clock_skew
        return round(self._rng.uniform(-skew, skew), 3) if skew else 0.0

    def instance(self, index: int, now: float, clock: float, *, outsider: bool) -> str:
        """The runner's ``INSTANCE``: the start time by the pod's own clock, then a random
        tie-break. Two pods may start at the same nanosecond; a restart whose clock is behind
        still starts after its old instance (a clock off by more than a restart takes is
        outside the contract: such a start is moved to just after the old one). An outsider's
        start time is anything within an hour."""
        started = round((now + clock) * 1e9)
        if outsider:
            started += round(self._rng.uniform(-3600.0, 3600.0) * 1e9)
        else:
            started = max(started, self._started.get(index, -1) + 1)
            self._started[index] = started
        # Ids are unique in a run, as the runner's are but with odds of about 2⁻⁶⁴ a pair (a
        # nanosecond and 32 random bits): the ground truth names processes by them. 100,000
        # pods started at one instant drew one id twice from 22 random bits (the index was
        # also OR'd over them), and the checker took pod 47442 for pod 63826.
        while True:
            tag = self._rng.getrandbits(32 - INDEX_BITS) << INDEX_BITS | index & _INDEX_MASK
            instance = instance_id(started, tag)
            if instance not in self._issued:
                self._issued.add(instance)
                return instance

    def workload_time(self) -> float:
        """How long a workload runs (``run``, ``exit``), or a pod's client takes to ask for a
        named barrier once its sidecar has passed (``named``)."""
        return self._rng.uniform(0.0, self.workload)
