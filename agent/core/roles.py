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

import math
from collections.abc import Callable

from agent.core.backoff import Backoff
from agent.core.effects import Aborted, Close, Dial, Released, Send
from agent.core.outcome import ReleaseKind
from agent.core.timing import DEFAULT_TIMING
from agent.protocol.handshake import Match, compare
from agent.protocol.wire import Abort, Ack, Arrive, Hello, Identity, Message, Refuse, Release

__all__ = ["Action", "Coordinator", "Member"]

Action = Send | Close | Dial | Released | Aborted


class Coordinator:
    """Index 0's side: counts matching arrivals over open sessions, releases when all N are in."""

    def __init__(self, me: Identity, *, ack_linger: float = DEFAULT_TIMING.ack_linger) -> None:
        self.me = me
        self.ack_linger = ack_linger
        self.verdict: Released | Aborted | None = None
        self.verdict_at = 0.0
        #: the digest of the instances this pod reached, once it has reached all N
        self._view: str | None = None
        self._index_of: dict[int, int] = {}  # conn -> member index
        self._conn_of: dict[int, int] = {}  # member index -> conn
        self._arrived: dict[int, str] = {}  # member index -> view of its latest Arrive
        self._matching: set[int] = set()  # members whose latest view is ours
        self._acked: set[int] = set()
        self._notice = False  # a peer said the barrier passed before
        # Built once: rebuilding it on every join and arrival made each O(N), so 10,000
        # arrivals took seconds before the release (bench: coordinator scale).
        self._members = frozenset(range(me.peers)) - {me.index}

    @property
    def members(self) -> frozenset[int]:
        return self._members

    @property
    def view(self) -> str | None:
        """The view this pod reached everyone with (None until it has): what it releases on."""
        return self._view

    def reached_all(self, view: str, now: float) -> list[Action]:
        """This pod has reached an instance of every index; ``view`` says which."""
        if self._view != view:
            self._view = view
            self._matching = {i for i, v in self._arrived.items() if v == view}
        return self._maybe_release(now)

    def unreached(self, now: float) -> list[Action]:
        """This pod must reach a restarted peer again: no release until it has."""
        if self.verdict is None:
            self._view = None
            self._matching = set()
        return []

    def joined(self, conn: int, hello: Hello, now: float) -> list[Action]:
        """A member's handshake completed on ``conn``. Connections are numbered in the order they
        were made, and a member holds only its newest: an older one that completes its
        handshake late (its member gave up on it and dialled again) is closed, not counted."""
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
        if old is not None and old > conn:
            return [Close(conn)]
        if old is not None:  # the member reconnected or restarted: the old session is stale
            actions += [Close(old)]
            self._forget(old)
        self._index_of[conn], self._conn_of[theirs.index] = theirs.index, conn
        if self.verdict is not None:  # a late joiner is told at once
            actions.append(Send(conn, self._verdict_message()))
        elif hello.released:  # another instance of index 0 released this member already
            actions += self.peer_released(now)
        return actions

    def received(self, conn: int, message: Message, now: float) -> list[Action]:
        index = self._index_of.get(conn)
        if index is None:
            return [Close(conn)]
        if isinstance(message, Arrive):
            self._arrived[index] = message.view
            if message.view == self._view:
                self._matching.add(index)
            else:
                self._matching.discard(index)
            return self._maybe_release(now)
        if isinstance(message, Ack):
            self._acked.add(index)
            return []
        return [Close(conn)]  # nothing else is legal from a member

    def closed(self, conn: int, now: float) -> list[Action]:
        self._forget(conn)
        return []

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
            del self._conn_of[index]
            if self.verdict is None:  # its next session must arrive anew
                self._arrived.pop(index, None)
                self._matching.discard(index)

    def _maybe_release(self, now: float) -> list[Action]:
        if self.verdict is not None or self._view is None:
            return []
        if len(self._matching) == len(self._members):
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
        message = self._verdict_message()
        actions: list[Action] = [Send(conn, message) for conn in self._index_of]
        return [*actions, verdict]

    def _verdict_message(self) -> Message:
        if isinstance(self.verdict, Aborted):
            return Abort(self.verdict.reason)
        # Only a release decided here names the view it counted; one learnt from a peer
        # counted nobody here, so its members are late joiners too.
        counted = self.verdict is not None and self.verdict.kind is ReleaseKind.DECIDED
        return Release((self._view or "") if counted else "")

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

    def not_arrived(self) -> list[int]:
        """Members with no matching arrival here (for the coordinator's look-around while it
        waits): not connected, or connected and silent (another instance of index 0 may have
        released them, and a released member does not arrive again)."""
        return sorted(self.members - self._matching)

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


class Member:
    """A non-coordinator's side: keep a session to the coordinator, arrive, await the verdict."""

    def __init__(
        self,
        *,
        now: float,
        rand: Callable[[], float],
        backoff: Backoff = DEFAULT_TIMING.backoff,
    ) -> None:
        self._backoff = backoff
        self._rand = rand
        self._failures = 0
        self._next_connect: float | None = now
        self.conn: int | None = None
        #: the digest of the instances reached, while this pod has reached all N
        self.view: str | None = None
        self._sent: str | None = None  # the view arrived with on the current session
        self._arrived_with: set[str] = set()  # every view this instance arrived with
        #: the view a Release from the coordinator named, and whether a peer said it passed:
        #: held until this pod has reached all N itself
        self._released_view: str | None = None
        self._peer_says = False
        self.verdict: Released | Aborted | None = None
        #: why the last dial or session failed
        self._dial_problem = "not connected to the coordinator yet"

    def poll(self, now: float, refused_at: tuple[str, ...] = ()) -> list[Action]:
        """The dial, when due; ``refused_at``: the coordinator's addresses, which all refused a
        moment ago (``agent.core.refused``): tried again without asking DNS."""
        if self._next_connect is not None and self._next_connect <= now and self.verdict is None:
            self._next_connect = None
            return [Dial(refused_at)]
        return []

    def next_wakeup(self) -> float | None:
        return self._next_connect

    def hold_dial(self, at: float) -> None:
        """The dial is not to ask DNS before ``at`` (the DNS pace): one due is put back, one
        scheduled later stays."""
        if self.conn is None and self.verdict is None:
            self._next_connect = max(self._next_connect or -math.inf, at)

    def opened(self, conn: int, now: float) -> list[Action]:
        """The handshake with the coordinator succeeded on ``conn``."""
        self.conn, self._failures, self._sent = conn, 0, None
        if self.verdict is not None:
            return [Send(conn, Ack())]
        return self._maybe_arrive()

    def disconnected(self, reason: str, now: float) -> list[Action]:
        """The dial or the session failed; dial again after a backoff."""
        self.conn = None
        self._dial_problem = f"coordinator: {reason}"
        if self.verdict is None:
            self._failures += 1
            self._next_connect = now + self._backoff.delay(self._failures, self._rand())
        return []

    def reached_all(self, view: str, now: float) -> list[Action]:
        self.view = view
        return self._maybe_arrive() + self._maybe_accept()

    def unreached(self, now: float) -> list[Action]:
        """A peer restarted: this pod arrives again once it has reached the new instance. The
        arrival already sent need not be taken back: it names the instances it was true of."""
        self.view = None
        return []

    @property
    def last_problem(self) -> str:
        """What this member waits for, as of now (for progress lines and timeouts)."""
        if self.conn is None:
            return self._dial_problem
        if self.view is not None and self._sent == self.view:
            return "arrived, waiting for the verdict"
        if self.view is None and self._sent is not None:
            return "re-reaching a restarted peer"
        return "connected, waiting for the others"

    def _maybe_arrive(self) -> list[Action]:
        if self.view is not None and self.conn is not None and self._sent != self.view:
            self._sent = self.view
            self._arrived_with.add(self.view)
            return [Send(self.conn, Arrive(self.view))]
        return []

    def received(self, message: Message, now: float) -> list[Action]:
        if isinstance(message, Release):
            self._released_view = message.view
            return self._maybe_accept()
        if isinstance(message, Abort):
            return self._decide(Aborted(message.reason))
        if isinstance(message, Refuse):
            return self._decide(Aborted(f"refused by the coordinator: {message.reason}"))
        # Nothing else is legal from the coordinator: drop the session and dial again. The retry
        # is scheduled here because the runner ignores the loss of a session we no longer hold.
        conn = self.conn
        name = type(message).__name__.lower()
        actions = self.disconnected(f"unexpected {name} from the coordinator", now)
        return [Close(conn), *actions] if conn is not None else actions

    def peer_released(self, now: float) -> list[Action]:
        """A peer's hello says the barrier was released already: this pod is a late joiner."""
        self._peer_says = True
        return self._maybe_accept()

    def _maybe_accept(self) -> list[Action]:
        """A release counts here only once this pod has reached every index itself. It was
        counted in it when the release names a view this instance arrived with; else it is a
        late joiner (an instance that came after the others passed)."""
        if self.view is None or (self._released_view is None and not self._peer_says):
            return []
        counted = self._released_view in self._arrived_with
        return self._decide(
            Released(ReleaseKind.BY_COORDINATOR if counted else ReleaseKind.ALREADY)
        )

    def abort(self, reason: str, now: float) -> list[Action]:
        return self._decide(Aborted(reason))

    def _decide(self, verdict: Released | Aborted) -> list[Action]:
        if self.verdict is not None:
            return []
        self.verdict = verdict
        ack: list[Action] = [Send(self.conn, Ack())] if self.conn is not None else []
        return [*ack, verdict]
