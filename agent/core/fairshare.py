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

A drop walks the keys oldest first to the first of an address holding the most: while every
address holds one (a Job of more pods than the bound) that is the very first, and a flood's
addresses hold the oldest keys once it has filled the bound. (A scan of every address took
0.1 ms a newcomer with 256 of them.)
"""

from __future__ import annotations

__all__ = ["FairShare"]


class FairShare:
    """The keys counted against one bound, by source address, each address's oldest first."""

    def __init__(self) -> None:
        self._by: dict[str, dict[int, None]] = {}  # a dict keeps the order keys came in
        self._order: dict[int, str] = {}  # every key, oldest first
        self._sizes: dict[int, int] = {}  # how many addresses hold that many keys
        self._top = 0  # the most any address holds

    def __len__(self) -> int:
        return len(self._order)

    def add(self, address: str, key: int) -> None:
        """``key``, newer than every key added before, now counts for ``address``."""
        keys = self._by.setdefault(address, {})
        self._resized(len(keys), len(keys) + 1)
        keys[key] = None
        self._order[key] = address

    def remove(self, address: str, key: int) -> bool:
        """``key`` no longer counts; False if it did not (already removed)."""
        keys = self._by.get(address)
        if keys is None or key not in keys:
            return False
        self._resized(len(keys), len(keys) - 1)
        del keys[key], self._order[key]
        if not keys:
            del self._by[address]
        return True

    def _resized(self, before: int, after: int) -> None:
        """One address now holds ``after`` keys, not ``before`` (one more or one fewer)."""
        if before:
            self._sizes[before] -= 1
        if after:
            self._sizes[after] = self._sizes.get(after, 0) + 1
        if after > self._top:
            self._top = after
        elif before == self._top and not self._sizes[before]:
            self._top = after  # the only one that held the most holds one fewer

    def victim(self, newcomer: str) -> tuple[str, int] | None:
        """What goes for a newcomer from ``newcomer``: the oldest key of the address holding
        the most (the newcomer counted with its own), between equals the oldest; None if
        nothing counts."""
        mine = len(self._by.get(newcomer, ()))
        most = max(self._top, mine + 1)
        # Oldest first: the first key of an address holding the most is that address's oldest,
        # and the oldest of theirs (while every address holds one, the very first key).
        for key, address in self._order.items():
            if len(self._by[address]) + (address == newcomer) == most:
                return address, key
        return None
