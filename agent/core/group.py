"""A group coordinator in the tree of coordinators (``agent.core.groups``), as a pure state
machine: a coordinator for its group's members below, a member of the root above.

Below, it keeps each member's latest arrival on its live session, as the root does
(``agent.core.roles.Coordinator``), but decides nothing: whenever the aggregate of its group
changes (an arrival, a lost or replaced session, its own reach) it sends the root one
``Arrive(⊕A, ⊕B, count)`` over the live arrivals and its own (``Uplink``). The root counts it
only when ``count`` is the whole group, so a lost session uncounts everything below it until it
arrives again; a replaced group coordinator is a lost session for its members and for the root.

Above, the root's ``Release`` names the aggregate it counted. Each complete aggregate sent is
kept with the arrivals it was made of, so the release fans out as it fans in: each member's
``Release`` names its own arrival in that aggregate, and an instance that did not make it (it
arrived later, or restarted since) is a late joiner, released only once it reached its targets.
"""

from __future__ import annotations

from collections.abc import Callable

from agent.core.backoff import Backoff
from agent.core.edgesums import from_hex, to_hex
from agent.core.effects import Aborted, Released, Send
from agent.core.groups import Tree
from agent.core.member import Action, Member
from agent.core.outcome import ReleaseKind
from agent.core.roles import Coordinator
from agent.core.timing import DEFAULT_TIMING
from agent.protocol.wire import Abort, Arrive, Hello, Identity, Message, Release

__all__ = ["GroupCoordinator", "Uplink"]

Aggregate = tuple[str, str, int]  # (⊕A, ⊕B) as on the wire, and how many pods they cover


class Uplink(Member):
    """A group coordinator's session with the root: a member whose arrival is its group's
    aggregate, sent again whenever it changes (an incomplete one uncounts the group)."""

    def __init__(
        self, *, full: int, now: float, rand: Callable[[], float], backoff: Backoff
    ) -> None:
        super().__init__(now=now, rand=rand, backoff=backoff, parent=0)
        self.full = full  # the group's size: the count of a complete aggregate
        self.reached = False  # this pod has reached its own targets
        self._count = 0

    def offer(self, aggregate: Aggregate | None, *, reached: bool) -> list[Action]:
        self.reached = reached
        if aggregate is None:
            self.view = None
            return []
        self.view, self._owed, self._count = aggregate
        return self._maybe_arrive() + self._maybe_accept()

    def _maybe_arrive(self) -> list[Action]:
        if self.view is None or self.conn is None or self._sent == (self.view, self._owed):
            return []
        self._sent = (self.view, self._owed)
        if self._count == self.full:  # only a whole group can be counted
            self._arrived_with.add(self._sent)
        count = 0 if self.full == 1 else self._count  # one pod's arrival, as a member's
        return [Send(self.conn, Arrive(self.view, self._owed, count))]

    def _maybe_accept(self) -> list[Action]:
        """As a member's, but on this pod's own reach, not on its group's."""
        if not self.reached or (self._released_view is None and not self._peer_says):
            return []
        counted = self._released_view in self._arrived_with
        return self._decide(
            Released(ReleaseKind.BY_COORDINATOR if counted else ReleaseKind.ALREADY)
        )

    @property
    def counted(self) -> tuple[str, str] | None:
        """The aggregate the root's release named, when it is one this pod sent whole."""
        named = self._released_view
        return named if named in self._arrived_with else None


class GroupCoordinator(Coordinator):
    """The first index of a group (not the root): sessions of its members below, one to the
    root above (``up``); its verdict is the root's, passed down."""

    def __init__(
        self,
        me: Identity,
        tree: Tree,
        *,
        now: float,
        rand: Callable[[], float],
        backoff: Backoff = DEFAULT_TIMING.backoff,
        ack_linger: float = DEFAULT_TIMING.ack_linger,
    ) -> None:
        super().__init__(me, ack_linger=ack_linger, sparse=True, tree=tree)
        full = tree.weight(me.index)
        self.up = Uplink(full=full, now=now, rand=rand, backoff=backoff)
        #: every complete aggregate sent, with the member arrivals it was made of
        self._made_of: dict[tuple[str, str], dict[int, Arrive]] = {}

    # --- below: the group's arrivals, passed up as one aggregate --------------------------------
    def _aggregate(self) -> Aggregate | None:
        assert self._tally is not None
        reached, owed = self._tally.totals()
        count = len(self._matching)
        if self._view is not None:
            reached ^= from_hex(self._view)
            owed ^= from_hex(self._owed)
            count += 1
        if count == 0:
            return None
        aggregate = (to_hex(reached), to_hex(owed), count)
        if count == self.up.full and aggregate[:2] not in self._made_of:
            self._made_of[aggregate[:2]] = {i: self._arrived[i] for i in self._matching}
        return aggregate

    def _maybe_release(self, now: float) -> list[Action]:
        """Not a decision here: the group's aggregate, sent up whenever it changes."""
        if self.verdict is not None:
            return []
        reached = self._view is not None
        return self._lift(self.up.offer(self._aggregate(), reached=reached), now)

    def reached_all(self, view: str, now: float, owed: str = "") -> list[Action]:
        if self._replaced:  # a newer instance of this index counts, never this one
            return []
        return super().reached_all(view, now, owed)

    def unreached(self, now: float) -> list[Action]:
        """Its own arrival leaves the aggregate: the group is uncounted until it reaches again."""
        super().unreached(now)
        return self._maybe_release(now)

    def joined(self, conn: int, hello: Hello, now: float) -> list[Action]:
        return super().joined(conn, hello, now) + self._maybe_release(now)

    def closed(self, conn: int, now: float) -> list[Action]:
        return super().closed(conn, now) + self._maybe_release(now)

    # --- above: the root's session and its verdict ----------------------------------------------
    def _lift(self, actions: list[Action], now: float) -> list[Action]:
        """The uplink's actions, its verdict made this pod's (and passed to its members)."""
        out: list[Action] = []
        for action in actions:
            if isinstance(action, Released | Aborted):
                out += self._decide(action, now)
            else:
                out.append(action)
        return out

    def _decide(self, verdict: Released | Aborted, now: float) -> list[Action]:
        if self.verdict is not None:
            return []
        up: list[Action] = []
        if self.up.verdict is None and isinstance(verdict, Aborted):  # decided here
            up = [a for a in self.up.abort(verdict.reason, now) if isinstance(a, Send)]
        return up + super()._decide(verdict, now)

    def _verdict_message(self, index: int) -> Message:
        if isinstance(self.verdict, Aborted):
            return Abort(self.verdict.reason)
        counted = self.up.counted
        arrival = self._made_of.get(counted, {}).get(index) if counted is not None else None
        return Release(arrival.view, arrival.owed) if arrival is not None else Release()

    def from_root(self, message: Message, now: float) -> list[Action]:
        return self._lift(self.up.received(message, now), now)

    def root_lost(self, reason: str, now: float) -> list[Action]:
        return self._lift(self.up.disconnected(reason, now), now)

    def opened_up(self, conn: int, now: float, instance: str) -> list[Action]:
        return self._lift(self.up.opened(conn, now, instance), now)

    def heard_of_root(self, newest: str, now: float) -> list[Action]:
        return self._lift(self.up.heard_of_coordinator(newest, now), now)

    def poll_up(
        self, now: float, refused_at: tuple[str, ...], newest_at: tuple[str, ...]
    ) -> list[Action]:
        return self._lift(self.up.poll(now, refused_at, newest_at), now)

    def peer_released(self, now: float) -> list[Action]:
        """A peer says the barrier passed: released as a late joiner once it reached its own
        targets; its members are late joiners too."""
        return self._lift(self.up.peer_released(now), now)

    def abort(self, reason: str, now: float) -> list[Action]:
        return self._decide(Aborted(reason), now)
