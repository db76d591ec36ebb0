"""Retry pacing: exponential backoff with full jitter (pure; the caller supplies the randomness).

Full jitter spreads the retries of N pods that failed together, so cluster DNS never sees them
arrive in step; the cap keeps detection within about a second of a peer appearing.
"""

from __future__ import annotations

from agent.values import value

__all__ = ["Backoff"]


@value(kw_only=True)
class Backoff:
    base: float = 0.05
    cap: float = 1.0

    def delay(self, failures: int, rand: float) -> float:
        """Seconds to wait after ``failures`` failures in a row; ``rand`` is uniform in [0, 1)."""
        # Never zero: a peer that refuses at once must not spin.
        return max(self.base / 2, rand * self.ceiling(failures))

    def ceiling(self, failures: int) -> float:
        return min(self.cap, self.base * 2.0 ** min(failures, 32))

    def equal_jitter(self, failures: int, rand: float) -> float:
        """Half to all of the ceiling: spread, yet never sooner than half of it, so the tries
        a failing thing costs over a while are bounded (full jitter may try again at once)."""
        return self.ceiling(failures) * (0.5 + 0.5 * rand)
