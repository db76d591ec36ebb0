"""The in-memory cluster's clock (cluster.py): one heap of timed events ordered by (time,
sequence number), and, with a CPU model, each pod's one core.

With ``cpu_meter`` (nanoseconds, e.g. ``time.process_time_ns``) each call into a pod's core is
measured and charged to that pod (``Pod.charge``): what reaches the pod's loop meanwhile waits,
in order, until its core is free, as a runner's queue waits on one core, and what the pod sends
leaves once the call that sent it has ended (``departs``). So the simulated clock shows what a
pod with one core would see: a coordinator that spends 50 µs on each of 100,000 arrivals
releases 5 s after the last one. As the runner does, a pod handles every event queued for it
and then polls each instance they reached once, not once an event. Without it the core takes
no time, each event is followed by its poll, and a run is a function of its seed alone (what
the property tests need).
"""

from __future__ import annotations

import functools
import heapq
import itertools
from collections.abc import Callable

from tests.sim.node import Node, Pod

__all__ = ["Clock"]


class Clock:
    def __init__(self, cpu_meter: Callable[[], int] | None = None) -> None:
        self.now = 0.0
        self.cpu_meter = cpu_meter
        #: each call's measured CPU is charged times this (a compiled core's: tests/sim/scale.py)
        self.cpu_scale = 1.0
        #: without the CPU model, a meter that only tallies each core call's CPU to its pod
        #: (``Pod.cpu``), charging nothing: the same calls as a run without it, so an interpreted
        #: and a compiled core's totals compare call for call (``python -m tests.sim.digest --cpu``)
        self.cpu_tally: Callable[[], int] | None = None
        self._events: list[tuple[float, int, Callable[[], object]]] = []
        self._seq = itertools.count()

    def at(self, when: float, fn: Callable[[], object]) -> None:
        heapq.heappush(self._events, (max(when, self.now), next(self._seq), fn))

    def run_until(self, until: float) -> None:
        events, pop = self._events, heapq.heappop  # the loop of every event: names looked up once
        while events and events[0][0] <= until:
            when, _, fn = pop(events)
            self.now = when
            fn()
        self.now = max(self.now, until)

    def run_before(self, until: float) -> None:
        """Every event due before ``until`` (not at it): one window of a part (tests/sim/part.py),
        whose events at ``until`` may still wait for the other part's messages."""
        events, pop = self._events, heapq.heappop
        while events and events[0][0] < until:
            when, _, fn = pop(events)
            self.now = when
            fn()
        self.now = max(self.now, until)

    @property
    def next_due(self) -> float:
        """When the next event is due (infinity: none is)."""
        return self._events[0][0] if self._events else float("inf")

    def changed(self, node: Node) -> None:
        """What others read of ``node`` without a message (alive, released, its pod's record)
        changed: a part tells the other (tests/sim/part.py); one process has nothing to do."""

    @property
    def idle(self) -> bool:
        """Nothing is left to happen."""
        return not self._events

    def on(self, pod: Pod, fn: Callable[[], object]) -> None:
        """``fn`` on ``pod``'s loop: now, or with a CPU model once its core is free and what
        reached it before has been handled (first in, first out)."""
        if self.cpu_meter is None:
            fn()
            return
        pod.inbox.append(fn)
        if not pod.draining:
            self._drain(pod)

    def _drain(self, pod: Pod) -> None:
        """``agent.io.runner._run`` on one core: every event queued is handled (what reaches
        the inbox meanwhile too), then each instance an event touched is polled once
        (``Node.after``); each call waits for the core."""
        pod.draining = True  # one drain at a time: what arrives meanwhile queues behind
        inbox, touched = pod.inbox, pod.touched
        while inbox or touched:
            if pod.busy_until > self.now:
                self.at(pod.busy_until, functools.partial(self._drain, pod))
                return
            if inbox:
                inbox.popleft()()
            else:
                node = next(iter(touched))
                del touched[node]
                node.step()
        pod.draining = False

    def departs(self, pod: Pod) -> float:
        """When what ``pod`` does now leaves it: once its core's last call has ended."""
        return max(self.now, pod.busy_until)
