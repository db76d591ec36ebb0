"""What the wait hands the workload once this pod passes: how it was released, after how long,
and every peer with the addresses it answered at."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import TYPE_CHECKING, overload

from agent.values import value

if TYPE_CHECKING:
    from agent.topology.model import Topology

__all__ = ["Outcome", "PeerInfo", "PeerList", "ReleaseKind"]


class ReleaseKind(StrEnum):
    """How this pod passed (the value is what the release line and ``Result.how`` say)."""

    #: this pod coordinates, and every member arrived with the view it reached
    DECIDED = "all peers arrived"
    #: the coordinator released the barrier with a view this instance arrived with
    BY_COORDINATOR = "the coordinator released the barrier"
    #: released before this instance arrived (it is a late joiner): the others had passed
    ALREADY = "the barrier was already released before this instance of the pod arrived"
    #: no barrier (one-sided wait, ``--barrier none``): every peer reached is all it waits for
    NO_BARRIER = "reached all peers"

    @property
    def counted(self) -> bool:
        """Released as one of the instances the coordinator counted, not as a late joiner."""
        return self in (ReleaseKind.DECIDED, ReleaseKind.BY_COORDINATOR)


@value
class PeerInfo:
    index: int
    hostname: str
    fqdn: str
    addresses: tuple[str, ...]


class PeerList(Sequence[PeerInfo]):
    """Every peer of the Job in index order, each made when it is read: the wait ends in
    O(1) whatever the Job's size (a pod of 100,000 would otherwise build 100,000 entries that
    only an output file reads), and a file that lists every peer pays for them once."""

    __slots__ = ("_addresses", "_topology")

    def __init__(self, topology: Topology, addresses: Mapping[int, tuple[str, ...]]) -> None:
        self._topology, self._addresses = topology, addresses

    def __len__(self) -> int:
        return self._topology.peers

    def _at(self, i: int) -> PeerInfo:
        t = self._topology
        return PeerInfo(i, t.hostname(i), t.display(i), self._addresses.get(i, ()))

    @overload
    def __getitem__(self, i: int) -> PeerInfo: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[PeerInfo]: ...
    def __getitem__(self, i: int | slice) -> PeerInfo | Sequence[PeerInfo]:
        if isinstance(i, slice):
            return tuple(self._at(j) for j in range(len(self))[i])
        if not -len(self) <= i < len(self):
            raise IndexError(i)
        return self._at(i % len(self))


@value
class Outcome:
    how: ReleaseKind
    elapsed: float
    #: every peer, with the addresses it answered at (a ``PeerList``, or a tuple)
    peers: Sequence[PeerInfo]
