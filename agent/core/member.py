"""A member's side of the barrier (every pod but index 0), as a pure state machine: keep a
session to the coordinator, arrive once this pod has reached its targets, await the verdict
(``agent.core.roles`` has the whole protocol and the coordinator's side)."""

from __future__ import annotations

import math
from collections.abc import Callable

from agent.core.backoff import Backoff
from agent.core.effects import Aborted, Close, Dial, Released, Send
from agent.core.outcome import ReleaseKind
from agent.core.timing import DEFAULT_TIMING
from agent.protocol.instance import newer
from agent.protocol.wire import Abort, Ack, Arrive, Message, Refuse, Release

__all__ = ["Member"]

Action = Send | Close | Dial | Released | Aborted


class Member:
    """A non-coordinator's side: keep a session to the coordinator, arrive, await the verdict."""

    def __init__(
        self,
        *,
        now: float,
        rand: Callable[[], float],
        backoff: Backoff = DEFAULT_TIMING.backoff,
        parent: int = 0,
    ) -> None:
        """``parent``: the coordinator this pod holds its session with (index 0, or its
        group's in a tree of coordinators: ``agent.core.groups``)."""
        self.parent = parent
        self._backoff = backoff
        self._rand = rand
        self._failures = 0
        self._next_connect: float | None = now
        self.conn: int | None = None
        #: which instance of index 0 the session is with, and the newest one heard of: a
        #: session with an older one is with a replaced coordinator (its old pod runs on)
        self._with = ""
        self._newest = ""
        #: the last session, or the last dial, was with an older instance than the newest
        self._stale = False
        #: the digest of the instances reached, while this pod has reached all N
        self.view: str | None = None
        self._owed = ""  # on a sparse graph: the sum its neighbours owe it
        #: (view, owed) arrived with on the current session
        self._sent: tuple[str, str] | None = None
        self._arrived_with: set[tuple[str, str]] = set()  # every arrival this instance made
        #: the view a Release from the coordinator named, and whether a peer said it passed:
        #: held until this pod has reached all N itself
        self._released_view: tuple[str, str] | None = None
        self._peer_says = False
        self.verdict: Released | Aborted | None = None
        #: why the last dial or session failed
        self._dial_problem = "not connected to the coordinator yet"

    def poll(
        self, now: float, refused_at: tuple[str, ...] = (), newest_at: tuple[str, ...] = ()
    ) -> list[Action]:
        """The dial, when due; ``refused_at``: the coordinator's addresses, which all refused a
        moment ago (``agent.core.refused``): tried again without asking DNS. ``newest_at``:
        where this pod reached the newest instance of index 0 (an address DNS lists for the
        Service), dialled instead of the name while the name led to an older one."""
        if self._next_connect is not None and self._next_connect <= now and self.verdict is None:
            self._next_connect = None
            return [Dial(newest_at if self._stale and newest_at else refused_at, self.parent)]
        return []

    def next_wakeup(self) -> float | None:
        return self._next_connect

    def hold_dial(self, at: float) -> None:
        """The dial is not to ask DNS before ``at`` (the DNS pace): one due is put back, one
        scheduled later stays."""
        if self.conn is None and self.verdict is None:
            self._next_connect = max(self._next_connect or -math.inf, at)

    def opened(self, conn: int, now: float, instance: str = "") -> list[Action]:
        """The handshake with the coordinator (``instance`` of index 0) succeeded on ``conn``.
        An older instance than one heard of is a replaced coordinator: it cannot release this
        pod with the others, so the session is closed and the dial tried again."""
        if newer(self._newest, instance):
            self._stale = True
            why = "an older instance of pod 0 than one heard of answered (a replaced pod)"
            return [Close(conn), *self.disconnected(why, now)]
        self.conn, self._failures, self._sent = conn, 0, None
        self._with, self._stale = instance, False
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

    def heard_of_coordinator(self, newest: str, now: float) -> list[Action]:
        """``newest``: the newest instance of index 0 heard of (a hello, a probe's reply). A
        session with an older one is with a replaced coordinator that runs on: it would hold
        this pod's arrival for ever, so the session is closed and the coordinator DNS gives
        dialled at once."""
        self._newest = newest
        if self.verdict is not None or self.conn is None or not newer(newest, self._with):
            return []
        conn, self.conn, self._stale, self._next_connect = self.conn, None, True, now
        self._dial_problem = "coordinator: replaced by a newer instance, dialling it"
        return [Close(conn)]

    def reached_all(self, view: str, now: float, owed: str = "") -> list[Action]:
        self.view, self._owed = view, owed
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
        if self.view is not None and self._sent == (self.view, self._owed):
            return "arrived, waiting for the verdict"
        if self.view is None and self._sent is not None:
            return "re-reaching a restarted peer"
        return "connected, waiting for the others"

    def _maybe_arrive(self) -> list[Action]:
        arrival = (self.view, self._owed) if self.view is not None else None
        if arrival is not None and self.conn is not None and self._sent != arrival:
            self._sent = arrival
            self._arrived_with.add(arrival)
            return [Send(self.conn, Arrive(*arrival))]
        return []

    def received(self, message: Message, now: float) -> list[Action]:
        if isinstance(message, Release):
            self._released_view = (message.view, message.owed)
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
