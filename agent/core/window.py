"""How many probes a pod has out at once: a congestion window, as TCP paces its segments.

All-to-all, every pod probes every pod: N pods start N(N - 1) handshakes at once, each also
answered by a pod that is itself probing. Where the pods' CPU cannot answer them within the
probe's deadline (256 pods on two cores: 65,280 handshakes), every probe times out after the
CPU was spent on it, each round sends them all again, and nobody is ever reached: a congestion
collapse (0 of 256 pods released in 15 minutes, 7.5 CPU-s burnt a pod). So a pod sends no more
probes than its window, and learns the window from what comes back:

- a probe that timed out or whose hello failed (a late reply, a connection the loaded peer
  dropped) halves it, at most once per window's worth of probes: the probes already out were
  sent into the same congestion, and their timeouts are one signal, not many;
- any other answer (reached, refused, another pod) grows it: by one a probe up to the last size
  that was halved (slow start, so an idle cluster is at full speed within a few round trips),
  by one a window beyond it (additive increase);
- it never goes below ``floor``, so a pod on a cluster that drops every probe (a NetworkPolicy)
  still tries its peers, nor above ``cap`` (the shell's probe workers).

Pure: the caller says what it sent and what landed; no clock is needed.
"""

from __future__ import annotations

from agent.core.causes import Cause

__all__ = ["CONGESTION", "Window"]

#: what says the network or the peer's CPU is overloaded (as opposed to a peer not up yet,
#: which refuses at once and costs nothing)
CONGESTION = frozenset({Cause.CONNECT_TIMEOUT, Cause.HELLO_FAILED})
#: probes out at first: an idle network doubles it every round trip
INITIAL = 16
#: never fewer than this out: 256 pods x 4 handshakes at once is what two cores answer within a
#: probe's deadline
FLOOR = 4


class Window:
    """The congestion window of one pod's probes."""

    __slots__ = ("_cap", "_floor", "_recovered_from", "_sent", "_size", "_threshold", "out")

    def __init__(self, *, cap: int, initial: int = INITIAL, floor: int = FLOOR) -> None:
        self._cap, self._floor = cap, min(floor, cap)
        self._size = float(max(self._floor, min(initial, cap)))
        self._threshold = float(cap)  # slow start until the first congestion
        self._sent = 0  # probes sent so far: the number of the next one
        self._recovered_from = 0  # a probe sent before this one cannot halve the window again
        #: probes sent and not landed yet
        self.out = 0

    @property
    def size(self) -> int:
        return int(self._size)

    @property
    def room(self) -> int:
        """How many more probes may go out now."""
        return max(0, int(self._size) - self.out)

    def send(self) -> int:
        """A probe goes out; its number, to give back with ``landed``."""
        self.out += 1
        self._sent += 1
        return self._sent - 1

    def landed(self, number: int, cause: Cause | None) -> None:
        """Probe ``number`` landed: reached (``cause`` None), or failed for ``cause``."""
        self.out -= 1
        if cause in CONGESTION:
            if number >= self._recovered_from:
                self._size = max(float(self._floor), self._size / 2)
                self._threshold = self._size
                self._recovered_from = self._sent
            return
        grow = 1.0 if self._size < self._threshold else 1.0 / self._size
        self._size = min(float(self._cap), self._size + grow)
