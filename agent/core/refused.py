"""Names whose every address refused: tried again at the same addresses, without asking DNS.

A peer's pod is published (and its address answers) before its agent listens, so the first
attempts of a name, and a member's first dials of its coordinator, are refused; each retry used
to ask cluster DNS again for an answer it had just given (and that cluster DNS serves from its
cache for its TTL anyway: CoreDNS's is 5 s). A refusal says the pod is there: for
``Timing.refused_reuse`` seconds after DNS gave them, the next attempt or dial tries the same
addresses. Anything else asks DNS again at once: an answer (from whichever pod, the identity
check settles who it is), a timeout, no route, NXDOMAIN. So a replaced pod's new address is
found at the latest when the reuse ends.

Pure: the caller says what refused and when; this says which addresses to try without DNS.
"""

from __future__ import annotations

__all__ = ["RefusedAnswers"]


class RefusedAnswers:
    def __init__(self, reuse: float) -> None:
        self._reuse = reuse
        #: peer index -> (the addresses that refused, when DNS gave them)
        self._answers: dict[int, tuple[tuple[str, ...], float]] = {}

    def tried(self, index: int, refused_at: tuple[str, ...], now: float) -> None:
        """An attempt or dial of peer ``index`` ended: every one of ``refused_at`` refused
        (empty: it ended any other way). The same addresses tried again keep their first time:
        DNS is asked again once they are ``reuse`` seconds old."""
        if not refused_at:
            self._answers.pop(index, None)
        elif (known := self._answers.get(index)) is None or known[0] != refused_at:
            self._answers[index] = (refused_at, now)

    def addresses(self, index: int, now: float) -> tuple[str, ...]:
        """Where to try peer ``index`` without asking DNS; empty: ask DNS."""
        known = self._answers.get(index)
        if known is None:
            return ()
        if now >= known[1] + self._reuse:
            del self._answers[index]
            return ()
        return known[0]
