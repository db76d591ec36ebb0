"""What the wait hands the workload once this pod passes: how it was released, after how long,
and every peer with the addresses it answered at."""

from __future__ import annotations

from enum import StrEnum

from agent.values import value

__all__ = ["Outcome", "PeerInfo", "ReleaseKind"]


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


@value
class Outcome:
    how: ReleaseKind
    elapsed: float
    peers: tuple[PeerInfo, ...]
