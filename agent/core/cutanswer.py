"""A Service answer cut short: the peers it left out are asked for by name.

One DNS message over TCP holds about 4,090 addresses, so a Service of more pods answers cut short
even over TCP. Once that answer's probes have landed, the peers still unreached may be among
those it left out: each is then asked for by name (``Reach.schedule``), and the log says so once.
"""

from __future__ import annotations

__all__ = ["CutAnswer"]


class CutAnswer:
    def __init__(self) -> None:
        self._pending = False  # the last answer was cut short and its probes are not all in
        self._said = False
        #: an answer was cut short: the Job is past what one answer holds (``vouching``)
        self.seen = False

    def answered(self, *, truncated: bool) -> None:
        self._pending = truncated
        self.seen = self.seen or truncated

    def take_due(self, *, round_out: bool) -> bool:
        """True once per cut-short answer, when its probes have landed."""
        if self._pending and not round_out:
            self._pending = False
            return True
        return False

    def take_first_telling(self) -> bool:
        """True the first time only: the log line is written once per process."""
        first, self._said = not self._said, True
        return first
