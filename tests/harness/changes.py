"""What every wait of the cluster in a box wakes on: a counter of changes (pods, DNS) under a
condition, so a change that lands between a check and the wait is not slept through."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

__all__ = ["Changes"]

T = TypeVar("T")


class Changes:
    def __init__(self) -> None:
        self.lock = threading.Condition()
        self._generation = 0  # bumped (under the lock) on every pod change and DNS sync

    def bump(self) -> None:
        with self.lock:
            self._generation += 1
            self.lock.notify_all()

    def wait_for(
        self, predicate: Callable[[], T], timeout: float, what: str, describe: Callable[[], str]
    ) -> T:
        """Until predicate() is truthy, woken by every change; bounded."""
        deadline = time.monotonic() + timeout
        while True:
            # The predicate may ask DNS: run it unlocked, and use the counter so a change that
            # lands between the check and the wait is not slept through.
            seen = self._generation
            value = predicate()
            if value:
                return value
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"waited {timeout:.1f}s for {what}; {describe()}")
            with self.lock:
                if self._generation == seen:
                    self.lock.wait(min(left, 1.0))
