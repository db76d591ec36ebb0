"""Sightings: a peer's claim heard from an address DNS does not vouch for, kept for DNS to say.

A hello from such an address is never believed (the address may be anybody's: addresses are
reused), but it may be the peer's replacement, already up at a new address: so its address and
the index it claimed are kept, and once DNS gives the address for that index the address is
probed, and what answers there counts (``agent.core.admission``, ``agent.core.incoming``).

A sighting of an index this pod has not reached yet lies *dormant*: nothing is asked about it,
as a pod's first hello often comes before DNS lists it, and the index is reached there a moment
later (then the sighting is answered, and dropped). Reached elsewhere, or there by an older
instance than the one sighted, it wakes, and is checked as any: the instance reached may be the
old one, still answering at the address DNS listed (or its last answer from the sighted address,
in flight as it was replaced there), and the one sighted its replacement, which may never say
hello here again (tests/sim/test_sparse.py: pod 0 restarted in place, and pod 5's arrival named
its old instance for ever). Dropping it instead
(sightings were kept only for reached indices) left this pod's view naming the old instance
for ever, so its arrival never matched the coordinator's and nobody was released
(tests/sim/test_early_hello.py).

Bounded as held sessions are, per address (one: its latest claim), per claimed index and in
all, the oldest sighting going first, dormant or not; a sighting is never a session, so no
bound here closes one. Pure.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from agent.core.bounded import Bounded, Bounds
from agent.core.reach import Reach
from agent.protocol.instance import newer

__all__ = ["Sightings"]


class Sightings:
    def __init__(self, bounds: Bounds, reach: Reach) -> None:
        #: address -> the index claimed, and the instance that claimed it (compared only with
        #: what answers there, never believed)
        self._store: Bounded[str, tuple[int, str]] = Bounded(bounds)
        self._reach = reach

    def __bool__(self) -> bool:
        return bool(self._store)

    def addresses(self) -> set[str]:
        return self._store.addresses()

    def claiming(self, index: int) -> list[str]:
        """The addresses of the sightings of ``index``, oldest first."""
        return self._store.claiming(index)

    def add(self, index: int, address: str, instance: str) -> list[int]:
        """``instance`` of ``index`` claimed from ``address``; the indices the sightings
        evicted claimed."""
        evicted = self._store.add(address, index, address, (index, instance))
        return [claimed for _, (claimed, _) in evicted]

    def dormant(self, index: int) -> bool:
        """Sightings of ``index`` wait for it to be reached before they are checked."""
        return not self._reach.peers[index].reached

    def checked(self, index: int) -> bool:
        """Whether a sighting of ``index`` is to be checked (one exists, and is awake)."""
        return bool(self._store.claiming(index)) and not self.dormant(index)

    def reached(self, index: int, address: str, instance: str) -> None:
        """``instance`` of ``index`` was reached at ``address``: a sighting of it from there is
        answered, unless it named a newer instance (a probe that cannot tell instances apart,
        ``""``, answers it: looking again would tell no more)."""
        sighted = self._store.get(address)
        if sighted is None or sighted[0] != index:
            return
        if not instance or not newer(sighted[1], instance):
            self._store.pop(address)

    def found_at(self, index: int, addresses: Iterable[str]) -> list[int]:
        """``index`` is at ``addresses``: sightings of other indices from there are dropped;
        the indices they claimed."""
        dropped = []
        for address in addresses:
            sighted = self._store.get(address)
            if sighted is not None and sighted[0] != index:
                self._store.pop(address)
                dropped.append(sighted[0])
        return dropped

    def give_up(self, index: int, vouched: Callable[[str], bool]) -> None:
        """The checks of ``index`` have lasted the time a healthy cluster takes to publish a
        pod: its awake sightings not ``vouched`` for are dropped."""
        if not self.dormant(index):
            for address in self._store.claiming(index):
                if not vouched(address):
                    self._store.pop(address)

    def take(
        self, index: int | None, address: str | None, vouched: Callable[[int, str], bool]
    ) -> list[tuple[int, str]]:
        """The sightings (index, address) now ``vouched`` for, which no longer wait: those of
        ``index`` or from ``address``, or all if neither is given. A dormant one too: an answer
        that came anyway vouched for it, at no cost (left waiting, its address would be named
        as one DNS does not list)."""
        keys = set(self._store.claiming(index) if index is not None else ())
        keys |= set(self._store.at(address) if address is not None else ())
        every = index is None and address is None
        if not (every or keys):  # nothing of theirs is kept: the store need not be read
            return []
        taken = [
            (claimed, at)
            for at, claimed, _, _ in self._store
            if (every or at in keys) and vouched(claimed, at)
        ]
        for _, at in taken:
            self._store.pop(at)
        return taken
