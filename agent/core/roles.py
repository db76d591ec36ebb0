"""The barrier's two roles, coordinator and member, as pure state machines.

Index 0 coordinates. Every other pod holds one connection to it (a *session*) and says
``Arrive(view)`` once it has reached all N pods, where ``view`` is a digest of which instance
(process) of each index it reached. The coordinator releases only when its own view is complete
and every member's latest arrival, over its open session, carries *the same* view: then every
counted instance has reached every other counted instance, one per index, whatever restarts,
replacements and message orders happened before. A view that changes (a peer restarted) simply
stops matching until the pod arrives again with its new one; nothing rests on timing.

A member accepts a ``Release`` (or a peer's word that the barrier passed) only once its own reach
is complete, so no pod returns before it has itself reached every index. After its verdict the
coordinator lingers until every member has acknowledged it (bounded), so no member is left
waiting on a coordinator that has gone: the race the seed's loop has when a fast pod leaves DNS.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from agent.core.edgesums import EdgeTally, from_hex
from agent.core.effects import Aborted, Close, Dial, Released, Send
from agent.core.groups import Tree
from agent.core.member import Member
from agent.core.outcome import ReleaseKind
from agent.core.timing import DEFAULT_TIMING
from agent.protocol.handshake import Match, compare
from agent.protocol.instance import newer
from agent.protocol.wire import Abort, Ack, Arrive, Hello, Identity, Message, Refuse, Release

__all__ = ["Action", "Coordinator", "Member"]

# the member's side is agent.core.member's (one concept a module); it is named here too

Action = Send | Close | Dial | Released | Aborted


class Coordinator:
    """Index 0's side: counts matching arrivals over open sessions, releases when all N are in."""

    def __init__(
        self,
        me: Identity,
        *,
        ack_linger: float = DEFAULT_TIMING.ack_linger,
        sparse: bool = False,
        tree: Tree | None = None,
    ) -> None:
        """``sparse``: arrivals carry edge sums (``agent.core.edgesums``) and count when the
        sums agree, not when the views are equal (a pod reached only its neighbours).
        ``tree``: the tree of coordinators (``agent.core.groups``): this pod holds the sessions
        of its children only, and a group coordinator's arrival counts only when it covers its
        whole group (``Arrive.count``); None: one coordinator, index 0, for every pod."""
        self.me = me
        self.ack_linger = ack_linger
        self.verdict: Released | Aborted | None = None
        self.verdict_at = 0.0
        #: the digest of the instances this pod reached, once it has reached all N
        self._view: str | None = None
        self._owed = ""  # and, on a sparse graph, the sum its neighbours owe it
        self._tally = EdgeTally() if sparse else None
        self._index_of: dict[int, int] = {}  # conn -> member index
        self._conn_of: dict[int, int] = {}  # member index -> conn
        self._instance_of: dict[int, str] = {}  # member index -> the instance on that conn
        self._arrived: dict[int, Arrive] = {}  # member index -> its latest Arrive
        self._matching: set[int] = set()  # members whose latest view is ours
        self._acked: set[int] = set()
        self._notice = False  # a peer said the barrier passed before
        self._replaced = False  # a newer instance of index 0 answers at its name
        # Built once: rebuilding it on every join and arrival made each O(N), so 10,000
        # arrivals took seconds before the release (bench: coordinator scale).
        self._tree = tree
        flat = frozenset(range(me.peers)) - {me.index}
        self._members = flat if tree is None else tree.children(me.index)
        #: the (index, instance) of members' sessions waiting for DNS to say whose they are
        #: (``Admission.contests``): a newer instance there contests the session counted
        self.contests: Callable[[], Iterable[tuple[int, str]]] = tuple
        #: asks DNS now for a contested index's name (``Admission.urge``)
        self.urge: Callable[[int, float], None] = lambda index, now: None

    @property
    def members(self) -> frozenset[int]:
        return self._members

    @property
    def view(self) -> str | None:
        """The view this pod reached everyone with (None until it has): what it releases on."""
        return self._view

    def reached_all(self, view: str, now: float, owed: str = "") -> list[Action]:
        """This pod has reached an instance of every target; ``view`` says which (and
        ``owed``, on a sparse graph, what its neighbours owe it)."""
        if (self._view, self._owed) != (view, owed):
            self._view, self._owed = view, owed
            if self._tally is None:
                self._matching = {i for i, a in self._arrived.items() if a.view == view}
        return self._maybe_release(now)

    def unreached(self, now: float) -> list[Action]:
        """This pod must reach a restarted peer again: no release until it has."""
        if self.verdict is None:
            self._view = None
            if self._tally is None:  # the sums of arrivals do not depend on this pod's own
                self._matching = set()
        return []

    def joined(self, conn: int, hello: Hello, now: float) -> list[Action]:
        """A member's handshake completed on ``conn``. A member index holds one session: its
        newest instance's (as ``Reach`` never lets an older instance replace a newer, a late
        redial of a replaced pod, even one already dead, must not close its replacement's
        session), and of one instance the newest connection (connections are numbered in the
        order they were made: one that completes its handshake late, its member having given up
        on it and dialled again, is closed, not counted)."""
        theirs = hello.identity
        match, reason = compare(self.me, theirs, expected_index=None)
        if match is Match.STRANGER or theirs.index not in self.members:
            why = reason or f"index {theirs.index} is not a member of this barrier"
            return [Send(conn, Refuse(why)), Close(conn)]
        if match is Match.DISAGREES:
            actions: list[Action] = [Send(conn, Abort(reason))]
            return actions + self._decide(Aborted(reason), now)
        actions = []
        old = self._conn_of.get(theirs.index)
        if old is not None and not self._supersedes(theirs, conn, old):
            return [Close(conn)]
        if old is not None:  # the member reconnected or restarted: the old session is stale
            actions += [Close(old)]
            self._forget(old)
        self._index_of[conn], self._conn_of[theirs.index] = theirs.index, conn
        self._instance_of[theirs.index] = theirs.instance
        if self.verdict is not None:  # a late joiner is told at once
            actions.append(Send(conn, self._verdict_message(theirs.index)))
        elif hello.released:  # another instance of index 0 released this member already
            actions += self.peer_released(now)
        return actions

    def contested_by(self, theirs: Identity) -> bool:
        """Whether a session of ``theirs`` (waiting for DNS) would replace the member's session
        counted here: a newer instance of its index (a replaced pod whose old process runs on,
        connected here, and whose new one's address DNS does not vouch for yet)."""
        return self._newer_than_counted(theirs.index, theirs.instance)

    def _newer_than_counted(self, index: int, instance: str) -> bool:
        current = self._instance_of.get(index, "")
        return bool(instance and current) and newer(instance, current)

    def _contested(self, now: float) -> bool:
        """A counted session's claim is contested by a newer instance of its index, which DNS
        has not ruled on yet: its arrival may be an old pod's, so nobody is released on it
        until DNS says which instance's address the index has (asked now; ``recount``)."""
        contested = {i for i, new in self.contests() if self._newer_than_counted(i, new)}
        for index in sorted(contested):
            self.urge(index, now)
        return bool(contested)

    def recount(self, now: float) -> list[Action]:
        """DNS ruled on what contested a session (``_contested``): the release, if due now."""
        return self._maybe_release(now)

    def _supersedes(self, theirs: Identity, conn: int, old: int) -> bool:
        """Whether ``theirs`` on ``conn`` is to replace the member's session on ``old``."""
        current = self._instance_of.get(theirs.index, "")
        if theirs.instance and current and theirs.instance != current:
            return newer(theirs.instance, current)
        return conn > old

    def received(self, conn: int, message: Message, now: float) -> list[Action]:
        index = self._index_of.get(conn)
        if index is None:
            return [Close(conn)]
        if isinstance(message, Arrive):
            self._arrived[index] = message
            if self._counts(index, message):
                self._matching.add(index)
            else:
                self._matching.discard(index)
            return self._maybe_release(now)
        if isinstance(message, Ack):
            self._acked.add(index)
            return []
        return [Close(conn)]  # nothing else is legal from a member

    @property
    def sessions(self) -> dict[int, int]:
        """The members' counted sessions: conn -> member index."""
        return self._index_of

    def closed(self, conn: int, now: float) -> list[Action]:
        self._forget(conn)
        return []

    def replaced(self, now: float) -> list[Action]:
        """This pod's own name leads to a newer instance of index 0: this one was replaced (its
        old pod runs on). It releases nobody, for good (an older instance never replaces a
        newer). Its members' sessions stay (closing admitted sessions would only make members
        whose dial by name still lands here dial it again and again): each member leaves on
        its own once it hears of the new instance (``Member.heard_of_coordinator``)."""
        if self.verdict is None:
            self._replaced = True
        return self.unreached(now)

    def abort(self, reason: str, now: float) -> list[Action]:
        """This pod found a peer that disagrees on the job: everyone stops."""
        return self._decide(Aborted(reason), now)

    def peer_released(self, now: float) -> list[Action]:
        """A peer says the barrier passed before (this coordinator restarted, or another
        instance of index 0 decided): released too, once this pod has reached every index."""
        self._notice = True
        return self._maybe_release(now)

    def _forget(self, conn: int) -> None:
        index = self._index_of.pop(conn, None)
        if index is not None and self._conn_of.get(index) == conn:
            del self._conn_of[index], self._instance_of[index]
            if self.verdict is None:  # its next session must arrive anew
                self._arrived.pop(index, None)
                self._matching.discard(index)
                if self._tally is not None:
                    self._tally.drop(index)

    def _maybe_release(self, now: float) -> list[Action]:
        if self.verdict is not None or self._view is None:
            return []
        everyone = len(self._matching) == len(self._members) and self._sums_agree()
        if everyone and not self._replaced and not self._contested(now):
            return self._decide(Released(ReleaseKind.DECIDED), now)
        if self._notice:
            # The members got their verdict from whoever decided it: no acks to await here.
            self._acked = set(self._members)
            return self._decide(Released(ReleaseKind.ALREADY), now)
        return []

    def _decide(self, verdict: Released | Aborted, now: float) -> list[Action]:
        if self.verdict is not None:
            return []
        self.verdict, self.verdict_at = verdict, now
        actions: list[Action] = [
            Send(conn, self._verdict_message(index)) for conn, index in self._index_of.items()
        ]
        return [*actions, verdict]

    def _verdict_message(self, index: int) -> Message:
        if isinstance(self.verdict, Aborted):
            return Abort(self.verdict.reason)
        # Only a release decided here names the view it counted; one learnt from a peer
        # counted nobody here, so its members are late joiners too.
        counted = self.verdict is not None and self.verdict.kind is ReleaseKind.DECIDED
        if not counted:
            return Release()
        if self._tally is not None:  # each member's own arrival, as it was counted
            arrival = self._arrived.get(index)
            return Release(arrival.view, arrival.owed) if arrival is not None else Release()
        return Release(self._view or "")

    def _counts(self, index: int, arrival: Arrive) -> bool:
        """Whether ``arrival`` counts: on a sparse graph, any with well-formed sums (they are
        judged all together, ``_sums_agree``); else one with this pod's own view."""
        if self._tally is None:
            return arrival.view == self._view
        weight = 1 if self._tree is None else self._tree.weight(index)
        if (arrival.count or 1) != weight:  # a group coordinator's, its group not all there
            self._tally.drop(index)
            return False
        try:
            self._tally.arrive(index, from_hex(arrival.view), from_hex(arrival.owed))
        except ValueError:  # no sums: a pod that is not on this graph
            self._tally.drop(index)
            return False
        return True

    def _sums_agree(self) -> bool:
        """Every assigned edge proven both ways (always, on the complete graph: the views
        are equal)."""
        if self._tally is None:
            return True
        if self._view is None:
            return False
        return self._tally.agree(from_hex(self._view), from_hex(self._owed))

    def may_leave(self, now: float) -> bool:
        """After the verdict: every member acknowledged, or the linger bound passed."""
        if self.verdict is None:
            return False
        return self._acked >= self.members or now >= self.verdict_at + self.ack_linger

    def leave_at(self) -> float | None:
        return None if self.verdict is None else self.verdict_at + self.ack_linger

    def unconnected(self) -> int:
        """How many members have no session here."""
        return len(self._members) - len(self._conn_of)

    def not_arrived(self, waits: Callable[[int], object] = lambda index: None) -> list[int]:
        """Members with no matching arrival here, for the coordinator's look-around while it
        waits: not connected, or connected and arrived with another view or acked (another
        instance of index 0 may have released them, and a released member does not arrive
        again). Not one connected that has said nothing yet: a member sends its arrival, or
        its ack once released anywhere, on its session, so looking would ask DNS its name
        only to hear what the session will say. Of those whose claim ``waits`` to be
        vouched for (a session held), only the lowest: the chain of reports stopped there,
        and checking that one name starts it again (``agent.core.vouching``); looking at
        each asked one name a member (a group coordinator at 10,000 pods asked 33 at once).
        Nor a group coordinator whose aggregate counts part of its group: its group is still
        arriving, and the session says the rest (the root at 100,000 pods asked 33 at once)."""
        said = (self._arrived.keys() - self._gathering()) | self._acked
        looked = [
            i for i in sorted(self.members - self._matching) if i not in self._conn_of or i in said
        ]
        held = [i for i in looked if waits(i) is not None]
        return [i for i in looked if i not in held[1:]]

    def _gathering(self) -> set[int]:
        """Group coordinators whose latest aggregate here counts only part of their group."""
        tree = self._tree
        if tree is None:
            return set()
        return {i for i, a in self._arrived.items() if (a.count or 1) < tree.weight(i)}

    def waiting_for(self) -> list[tuple[int, str]]:
        """Members keeping the barrier closed, and why (for progress lines and timeouts)."""
        out = []
        for i in sorted(self.members - self._matching):
            if i not in self._conn_of:
                why = "not connected"
            elif i not in self._arrived:
                why = "connected, not arrived yet"
            else:
                why = "arrived, but reached other instances than this pod (a pod restarted)"
            out.append((i, why))
        return out
