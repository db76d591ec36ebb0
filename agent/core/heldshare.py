"""What one process holds for parties DNS has not vouched for, bounded once for all its barriers.

A sidecar serves the start barrier and up to 64 named barriers on one port (``run
--exit-barrier`` two), each instance with a core and an ``Admission`` of its own. Bounds kept
per instance multiply by the instances: 16 unlisted addresses holding sessions to each of a
sidecar's 65 instances once took it to "Too many open files". So every instance of a process
holds its sessions through one :class:`HeldShare`: at most ``HELD.per_address`` a source
address, ``HELD.per_index`` claiming one pod and, in all, ``HELD.total`` more than the members
the holding instance has no session for, whatever the number of instances. It also says each
unlisted address once for the process, not once per instance (``Said``).

What goes first is the holding instance's own: a session beyond a bound closes that instance's
oldest session in the bound's group (from that address, claiming that pod, or any), and where
that instance holds none there, the newcomer itself is closed. Never another instance's
session: its connection belongs to another loop, and closing it from here would leave its
descriptor open until that loop woke, while the newcomer would already count. Closing the
newcomer costs a real pod one redial: once DNS lists it, it is admitted without being held.
Nothing admitted is kept here, so nothing admitted is ever closed for a bound. Pure.
"""

from __future__ import annotations

import itertools

from agent.core.bounded import UNBOUNDED, Bounded, Bounds

__all__ = ["HELD", "HeldShare", "Said"]

#: a process's sessions from addresses not vouched for, over every barrier instance it serves:
#: a few from one address, a few claiming one pod, and in all 256 beyond one for each member the
#: holding instance has no session for (a large Job's members may dial before the coordinator
#: has found them); each holds a file descriptor: ``agent.io.limits`` counts these
HELD = Bounds(per_address=4, per_index=4, total=256)
_SAID = 256  # unlisted addresses remembered as said: beyond it the oldest may be said again

_Key = tuple[int, int]  # (owner, conn)


class Said:
    """The unlisted addresses named in the log, for the whole process: when each was first
    named, and which have been warned of. An address is forgotten once some instance finds it
    listed (it may be said again if it stops being listed), or when more than ``_SAID`` newer
    ones push it out."""

    def __init__(self) -> None:
        self.since: dict[str, float] = {}  # oldest first
        self.warned: set[str] = set()

    def first_named(self, addresses: set[str], now: float) -> list[str]:
        """Those of ``addresses`` never named before (now named), sorted."""
        new = sorted(addresses - self.since.keys())
        self.since.update(dict.fromkeys(new, now))
        while len(self.since) > _SAID:
            self.forget(next(iter(self.since)))
        return new

    def forget(self, address: str) -> None:
        self.since.pop(address, None)
        self.warned.discard(address)


class HeldShare:
    """The held sessions of every barrier instance of a process, each instance an owner."""

    def __init__(self, bounds: Bounds = HELD) -> None:
        self.bounds = bounds
        self._held: Bounded[_Key, None] = Bounded(UNBOUNDED)  # evicted by its own rule
        self._owners = itertools.count()
        self.said = Said()
        self._said_bound = False

    def __len__(self) -> int:
        return len(self._held)

    def join(self) -> int:
        """A new instance: its owner number."""
        return next(self._owners)

    def leave(self, owner: int) -> None:
        """The instance has ended, and its connections with it: what it held counts no more."""
        for key, _, _, _ in self._held:
            if key[0] == owner:
                self._held.pop(key)

    def make_room(
        self, owner: int, index: int, address: str, *, unconnected: int
    ) -> list[int] | None:
        """Room for one more session of ``owner`` claiming ``index`` from ``address``, while it
        has ``unconnected`` members without a session that counts: the connections of its own
        to close first (they no longer count here), or None: no room, close the newcomer."""
        closing: dict[_Key, None] = {}
        b = self.bounds
        for group, most in (
            (self._held.at(address), b.per_address),
            (self._held.claiming(index), b.per_index),
        ):
            if not _close_own(group, most, owner, closing):
                return None
        room = b.total + unconnected
        full = len(self._held) - len(closing) >= room  # rare: only then is every key looked at
        if full and not _close_own([key for key, *_ in self._held], room, owner, closing):
            return None
        for key in closing:
            self._held.pop(key)
        return [conn for _, conn in closing]

    def add(self, owner: int, conn: int, index: int, address: str) -> None:
        """``owner`` holds session ``conn`` (after ``make_room`` gave room for it)."""
        self._held.add((owner, conn), index, address, None)

    def drop(self, owner: int, conn: int) -> None:
        """``owner`` holds ``conn`` no more (closed, lost, or vouched for)."""
        self._held.pop((owner, conn))

    def first_bound(self) -> bool:
        """True the first time, for the process, a bound closes a session (said once)."""
        first, self._said_bound = not self._said_bound, True
        return first


def _close_own(group: list[_Key], most: int, owner: int, closing: dict[_Key, None]) -> bool:
    """Mark ``owner``'s oldest in ``group`` to close until one more fits within ``most``;
    False if its own are too few (the newcomer is to be closed instead)."""
    left = [key for key in group if key not in closing]
    excess = len(left) + 1 - most
    if excess <= 0:
        return True
    own = [key for key in left if key[0] == owner][:excess]
    closing.update(dict.fromkeys(own))
    return len(own) == excess
