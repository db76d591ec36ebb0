"""Which connection a full bound drops: the oldest of the source address that holds the most.

A bound on connections still proving who they are (``agent.io.handshaking``) used to drop the
one waiting longest for each newcomer. A flood from a few addresses that reopens every dropped
connection at once then turned the whole bound over faster than a real peer's handshake took:
a peer's connection became the oldest, and went. Shared by source address instead, a flood
only ever drops its own: the address holding the most (counting the newcomer) loses the
connection it has waited longest on. Between addresses holding as many, the one waiting longest
goes, as before, so a bound full of single peers (a Job of more pods than the bound) behaves as
it did. A flood that shares a peer's address shares that peer's share: on a pod network an
address is a pod. Pure: connections are numbered keys, oldest lowest.
"""

from __future__ import annotations

__all__ = ["FairShare"]


class FairShare:
    """The keys counted against one bound, by source address, each address's oldest first."""

    def __init__(self) -> None:
        self._by: dict[str, dict[int, None]] = {}  # a dict keeps the order keys came in
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def add(self, address: str, key: int) -> None:
        """``key``, newer than every key added before, now counts for ``address``."""
        self._by.setdefault(address, {})[key] = None
        self._count += 1

    def remove(self, address: str, key: int) -> bool:
        """``key`` no longer counts; False if it did not (already removed)."""
        keys = self._by.get(address)
        if keys is None or key not in keys:
            return False
        del keys[key]
        if not keys:
            del self._by[address]
        self._count -= 1
        return True

    def victim(self, newcomer: str) -> tuple[str, int] | None:
        """What goes for a newcomer from ``newcomer``: the oldest key of the address holding
        the most (the newcomer counted with its own), between equals the oldest; None if
        nothing counts."""
        chosen: tuple[str, int] | None = None
        best = (0, 0)
        for address, keys in self._by.items():
            oldest = next(iter(keys))
            rank = (len(keys) + (address == newcomer), -oldest)
            if chosen is None or rank > best:
                chosen, best = (address, oldest), rank
        return chosen
