"""Missing peers a Service round cannot tell apart: each asked for by name once that has lasted.

A round maps a listed address to a peer only by the hello it answers with. An address that
refuses, times out or fails the token proof (the client proves first, so a server with another
token says nothing, not even its index) may be any missing peer's, or none's (a stale record, a
pod of another job). With one missing peer and one such address the pairing is certain; with
more of either it is not, and every missing peer would read the same list of addresses, and no
cause of its own. A peer's own name tells: the missing peers are then asked for by name
(``Reach.schedule``, as a cut-short answer's), once the ambiguity has lasted
``Timing.ambiguous_by_name_after``, or half the timeout if that is sooner; the first
``Timing.ambiguous_by_name_max`` of them only, so the question costs a pod a few queries however
many peers are silent.

Pure: the caller reports each round's counts with the time.
"""

from __future__ import annotations

from agent.core.timing import Timing

__all__ = ["Ambiguity", "paired"]


def paired(missing: int, unanswered: int) -> bool:
    """Whether the Service's answer alone says why each of ``missing`` peers is missing, given
    ``unanswered`` listed addresses that did not answer as a peer: none is at any of them (it
    is not listed), or the one missing peer is at the one such address."""
    return missing == 0 or unanswered == 0 or missing == unanswered == 1


class Ambiguity:
    def __init__(self, timing: Timing, timeout: float | None) -> None:
        after = timing.ambiguous_by_name_after
        #: how long an ambiguity lasts before the missing peers are asked for by name
        self.after = min(after, timeout / 2) if timeout else after
        #: how many of the missing peers are asked for (``Timing.ambiguous_by_name_max``)
        self.most = timing.ambiguous_by_name_max
        self._since: float | None = None  # when the ambiguity seen now began

    def lasted(self, *, missing: int, unanswered: int, now: float) -> bool:
        """A round's answer, with ``missing`` peers that only the Service finds and
        ``unanswered`` listed addresses that did not answer as a peer: True when those peers
        are to be asked for by name now."""
        if paired(missing, unanswered):
            self._since = None
            return False
        if self._since is None:
            self._since = now
        return now - self._since >= self.after
