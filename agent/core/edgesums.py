"""Arrivals that compose: two XOR sums over a pod's assigned edges prove every edge both ways.

Pod ``i`` arrives, once it has reached its targets, with ``A_i = ⊕_{j ∈ N(i)} h(i, j, seen_i(j))``
(the instance it reached of each neighbour) and ``B_i = ⊕_{j ∈ N(i)} h(j, i, I_i)`` (what each
neighbour must have seen of it), ``h`` BLAKE2b-128 keyed by the Job's uid. The graph is
symmetric, so with one arrival per index ``⊕A = ⊕B`` exactly when, for every assigned edge
``i-j``, ``seen_i(j) = I_j`` and ``seen_j(i) = I_i``: every edge proven both ways between the
counted instances. A mismatch passes only by a 2⁻¹²⁸ cancellation; every term names its ordered
pair, so no term repeats inside a correct sum. The sums aggregate by XOR, so the coordinator
keeps two integers and updates them per arrival: no O(N) work per event, and a tree of
coordinators can pass ``(count, ⊕A, ⊕B)`` up (docs/at-scale.md).

The key is not secret: the sums catch stale instances and bugs, not a lying pod of the Job,
which the threat model trusts already (docs/security.md). Pure: ``hashlib`` only.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["EdgeSums", "EdgeTally", "from_hex", "to_hex"]

_BITS = 128
_PERSON = b"peer-agent/edge"  # BLAKE2b's personalisation: these hashes are for nothing else


def to_hex(value: int) -> str:
    return f"{value:032x}"


def from_hex(text: str) -> int:
    return int(text, 16)


class EdgeSums:
    """The hash ``h`` of one Job (keyed by its uid) and the two sums of one pod's arrival."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        import hashlib  # OpenSSL's hashes load with it: only once a pod has reached its targets

        self._key = hashlib.blake2b(key, digest_size=32, person=_PERSON).digest()

    def term(self, i: int, j: int, instance: str) -> int:
        """``h(i, j, instance)``: pod ``i`` reached ``instance`` of pod ``j``."""
        import hashlib

        data = f"{i}>{j}:{instance}".encode()
        digest = hashlib.blake2b(data, digest_size=_BITS // 8, key=self._key).digest()
        return int.from_bytes(digest, "big")

    def reached(self, i: int, seen: Iterable[tuple[int, str]]) -> int:
        """``A_i``: ``seen`` holds (neighbour, the instance of it reached)."""
        total = 0
        for j, instance in seen:
            total ^= self.term(i, j, instance)
        return total

    def owed(self, i: int, neighbours: Iterable[int], instance: str) -> int:
        """``B_i``: what each neighbour of ``i`` must have seen of its ``instance``."""
        total = 0
        for j in neighbours:
            total ^= self.term(j, i, instance)
        return total


class EdgeTally:
    """The coordinator's running ``⊕A`` and ``⊕B`` over one arrival an index (its latest, on
    its live session): O(1) per arrival and per lost session."""

    __slots__ = ("_of", "_owed", "_reached")

    def __init__(self) -> None:
        self._of: dict[int, tuple[int, int]] = {}
        self._reached = 0
        self._owed = 0

    def __len__(self) -> int:
        return len(self._of)

    def arrive(self, index: int, reached: int, owed: int) -> None:
        """``index``'s latest arrival, in place of any before it."""
        self.drop(index)
        self._of[index] = (reached, owed)
        self._reached ^= reached
        self._owed ^= owed

    def drop(self, index: int) -> None:
        """``index``'s arrival counts no more (its session ended, or it arrives anew)."""
        old = self._of.pop(index, None)
        if old is not None:
            self._reached ^= old[0]
            self._owed ^= old[1]

    def agree(self, reached: int, owed: int) -> bool:
        """With the coordinator's own ``reached`` and ``owed``: every edge proven both ways."""
        return self._reached ^ reached == self._owed ^ owed
