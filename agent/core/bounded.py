"""What the agent keeps for parties DNS has not vouched for, bounded three ways.

Each item is kept with the index it claims and the address it came from. Adding one beyond a
bound evicts the oldest of its address, of its claimed index, or of all, whichever bound it
passes: a party with one address cannot make the agent keep more than ``per_address`` items,
one with many addresses claiming one pod no more than ``per_index``, and all of them together
no more than ``total``. Pure; ``agent.core.admission`` keeps held sessions and sightings in it.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from typing import Generic, TypeVar

from agent.values import value

__all__ = ["UNBOUNDED", "Bounded", "Bounds"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


@value
class Bounds:
    per_address: int
    per_index: int
    total: int


#: for a store whose owner does the evicting by a rule of its own (``agent.core.heldshare``)
UNBOUNDED = Bounds(per_address=2**62, per_index=2**62, total=2**62)


class Bounded(Generic[K, V]):
    """Items by key, oldest first, each with the index it claims and the address it came from."""

    def __init__(self, bounds: Bounds) -> None:
        self.bounds = bounds
        self._items: dict[K, tuple[int, str, V]] = {}
        self._by_index: dict[int, dict[K, None]] = {}  # ordered sets, oldest first
        self._by_address: dict[str, dict[K, None]] = {}

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __iter__(self) -> Iterator[tuple[K, int, str, V]]:
        """(key, index, address, value) of every item, oldest first (a copy: safe to change
        the store meanwhile)."""
        return iter([(k, i, a, v) for k, (i, a, v) in self._items.items()])

    def get(self, key: K) -> V | None:
        item = self._items.get(key)
        return None if item is None else item[2]

    def claiming(self, index: int) -> list[K]:
        return list(self._by_index.get(index, ()))

    def at(self, address: str) -> list[K]:
        return list(self._by_address.get(address, ()))

    def addresses(self) -> set[str]:
        return set(self._by_address)

    def add(
        self, key: K, index: int, address: str, value: V, *, total: int | None = None
    ) -> list[tuple[K, V]]:
        """Keep ``value`` as the newest item; the items that makes too many are evicted (and
        returned), the oldest first. ``total``: the bound in all this time, if not the
        store's own (it may grow with what is not counted elsewhere)."""
        self.pop(key)
        self._items[key] = (index, address, value)
        self._by_index.setdefault(index, {})[key] = None
        self._by_address.setdefault(address, {})[key] = None
        evicted: list[tuple[K, V]] = []
        bounds = self.bounds
        for group, most in (
            (self._by_address[address], bounds.per_address),
            (self._by_index[index], bounds.per_index),
            (self._items, bounds.total if total is None else total),
        ):
            while len(group) > most:
                oldest = next(iter(group))
                evicted.append((oldest, self._items[oldest][2]))
                self.pop(oldest)
        return evicted

    def pop(self, key: K) -> V | None:
        item = self._items.pop(key, None)
        if item is None:
            return None
        index, address, value = item
        _discard(self._by_index, index, key)
        _discard(self._by_address, address, key)
        return value


G = TypeVar("G", bound=Hashable)


def _discard(groups: dict[G, dict[K, None]], group: G, key: K) -> None:
    members = groups[group]
    del members[key]
    if not members:
        del groups[group]
