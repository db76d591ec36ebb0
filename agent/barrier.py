"""The global barrier as a pure state machine: events and ``now`` in, actions out.

Index 0 coordinates. Every other pod holds one connection to it (a *session*), says ``Arrive`` once
it has reached all its targets, and gets ``Release`` when all N have arrived — or ``Abort`` when a
pod disagrees on the job. An arrival counts only while its session is open, so a pod that restarts
before the release is counted again only when its new instance arrives; a restarted coordinator
simply gathers the arrivals again. After its verdict the coordinator lingers until every member has
acknowledged it (bounded), so no member is left waiting on a coordinator that has gone: the race
the seed's loop has when a fast pod leaves DNS.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from agent.backoff import Backoff
from agent.handshake import Verdict, compare
from agent.wire import Abort, Ack, Arrive, Hello, Identity, Message, Refuse, Release

__all__ = [
    "Aborted",
    "Close",
    "Connect",
    "Coordinator",
    "Member",
    "Released",
    "Send",
]


@dataclass(frozen=True)
class Send:
    conn: int
    message: Message


@dataclass(frozen=True)
class Close:
    conn: int


@dataclass(frozen=True)
class Connect:
    """Member: open a session to the coordinator (resolve its name afresh)."""


@dataclass(frozen=True)
class Released:
    how: str


@dataclass(frozen=True)
class Aborted:
    reason: str


Action = Send | Close | Connect | Released | Aborted


class Coordinator:
    """Index 0's side: counts arrivals over open sessions, releases when all N are in."""

    def __init__(self, me: Identity, *, linger: float = 10.0) -> None:
        self.me = me
        self.linger = linger
        self.verdict: Released | Aborted | None = None
        self.verdict_at = 0.0
        self._self_arrived = False
        self._index_of: dict[int, int] = {}  # conn -> member index
        self._conn_of: dict[int, int] = {}  # member index -> conn
        self._arrived: set[int] = set()
        self._acked: set[int] = set()
        # Built once: rebuilding it on every join and arrival made each O(N), so 10,000
        # arrivals took seconds before the release (bench: coordinator scale).
        self._members = frozenset(range(me.peers)) - {me.index}

    @property
    def members(self) -> frozenset[int]:
        return self._members

    def self_arrived(self, now: float) -> list[Action]:
        self._self_arrived = True
        return self._maybe_release(now)

    def joined(self, conn: int, hello: Hello, now: float) -> list[Action]:
        """A member's handshake completed on ``conn``. Connections are numbered in the order they
        were made, and a member holds only its newest: an older one that completes its
        handshake late (its member gave up on it and dialled again) is closed, not counted."""
        theirs = hello.identity
        verdict, reason = compare(self.me, theirs, expected_index=None)
        if verdict == Verdict.STRANGER or theirs.index not in self.members:
            why = reason or f"index {theirs.index} is not a member of this barrier"
            return [Send(conn, Refuse(why)), Close(conn)]
        if verdict == Verdict.DISAGREES:
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
        return actions

    def received(self, conn: int, message: Message, now: float) -> list[Action]:
        index = self._index_of.get(conn)
        if index is None:
            return [Close(conn)]
        if isinstance(message, Arrive):
            self._arrived.add(index)
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

    def withdraw(self, now: float) -> list[Action]:
        """This pod must reach a restarted peer again: it has not arrived until then."""
        if self.verdict is None:
            self._self_arrived = False
        return []

    def peer_released(self, now: float) -> list[Action]:
        """A restarted coordinator learns from a peer that the barrier passed before."""
        if self.verdict is not None:
            return []  # decided here: the acks it awaits are still owed
        # The members got their verdict from the coordinator that decided it: nothing to await.
        self._acked = set(self.members)
        return self._decide(Released("a peer reports the barrier already released"), now)

    def _forget(self, conn: int) -> None:
        index = self._index_of.pop(conn, None)
        if index is not None and self._conn_of.get(index) == conn:
            del self._conn_of[index]
            if self.verdict is None:
                self._arrived.discard(index)  # its next instance must arrive anew

    def _maybe_release(self, now: float) -> list[Action]:
        if self.verdict is None and self._self_arrived and self._arrived >= self.members:
            return self._decide(Released("all peers arrived"), now)
        return []

    def _decide(self, verdict: Released | Aborted, now: float) -> list[Action]:
        if self.verdict is not None:
            return []
        self.verdict, self.verdict_at = verdict, now
        message = self._verdict_message()
        actions: list[Action] = [Send(conn, message) for conn in self._index_of]
        return [*actions, verdict]

    def _verdict_message(self) -> Message:
        return Abort(self.verdict.reason) if isinstance(self.verdict, Aborted) else Release()

    def may_leave(self, now: float) -> bool:
        """After the verdict: every member acknowledged, or the linger bound passed."""
        if self.verdict is None:
            return False
        return self._acked >= self.members or now >= self.verdict_at + self.linger

    def leave_at(self) -> float | None:
        return None if self.verdict is None else self.verdict_at + self.linger

    def waiting_for(self) -> list[tuple[int, str]]:
        """Members keeping the barrier closed, and why (for progress lines and timeouts)."""
        out = []
        for i in sorted(self.members - self._arrived):
            why = "connected, not arrived yet" if i in self._conn_of else "not connected"
            out.append((i, why))
        return out


class Member:
    """A non-coordinator's side: keep a session to the coordinator, arrive, await the verdict."""

    def __init__(
        self,
        *,
        now: float,
        backoff: Backoff | None = None,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._backoff = backoff or Backoff()
        self._rand = rand
        self._failures = 0
        self._next_connect: float | None = now
        self.conn: int | None = None
        self.reach_done = False
        self._arrive_sent = False
        self.verdict: Released | Aborted | None = None
        self.last_problem = "not connected to the coordinator yet"

    def poll(self, now: float) -> list[Action]:
        if self._next_connect is not None and self._next_connect <= now and self.verdict is None:
            self._next_connect = None
            return [Connect()]
        return []

    def next_wakeup(self) -> float | None:
        return self._next_connect

    def opened(self, conn: int, now: float) -> list[Action]:
        """The handshake with the coordinator succeeded on ``conn``."""
        self.conn, self._failures, self._arrive_sent = conn, 0, False
        self.last_problem = "connected, waiting for the others"
        if self.verdict is not None:
            return [Send(conn, Ack())]
        return self._maybe_arrive()

    def connect_failed(self, reason: str, now: float) -> list[Action]:
        """Connecting or the session failed; try again after a backoff."""
        self.conn = None
        self.last_problem = f"coordinator: {reason}"
        if self.verdict is None:
            self._failures += 1
            self._next_connect = now + self._backoff.delay(self._failures, self._rand())
        return []

    def reached_all(self, now: float) -> list[Action]:
        self.reach_done = True
        return self._maybe_arrive()

    def _maybe_arrive(self) -> list[Action]:
        if self.reach_done and self.conn is not None and not self._arrive_sent:
            self._arrive_sent = True
            return [Send(self.conn, Arrive())]
        return []

    def received(self, message: Message, now: float) -> list[Action]:
        if isinstance(message, Release):
            return self._decide(Released("the coordinator released the barrier"))
        if isinstance(message, Abort):
            return self._decide(Aborted(message.reason))
        if isinstance(message, Refuse):
            return self._decide(Aborted(f"refused by the coordinator: {message.reason}"))
        # Nothing else is legal from the coordinator: drop the session and dial again. The retry
        # is scheduled here because the runner ignores the loss of a session we no longer hold.
        conn = self.conn
        name = type(message).__name__.lower()
        actions = self.connect_failed(f"unexpected {name} from the coordinator", now)
        return [Close(conn), *actions] if conn is not None else actions

    def peer_released(self, now: float) -> list[Action]:
        """A peer's hello says the barrier was released already: this pod is a late joiner."""
        return self._decide(Released("a peer reports the barrier already released"))

    def abort(self, reason: str, now: float) -> list[Action]:
        return self._decide(Aborted(reason))

    def withdraw(self, now: float) -> list[Action]:
        """This pod must reach a restarted peer again. An Arrive already sent is taken back by
        closing the session (the coordinator counts arrivals only over open sessions); a new
        one is opened at once, and arrives once the peer is reached again."""
        self.reach_done = False
        if self.verdict is not None or not self._arrive_sent or self.conn is None:
            return []
        conn, self.conn, self._arrive_sent = self.conn, None, False
        self._next_connect = now
        self.last_problem = "re-reaching a restarted peer"
        return [Close(conn)]

    def _decide(self, verdict: Released | Aborted) -> list[Action]:
        if self.verdict is not None:
            return []
        self.verdict = verdict
        ack: list[Action] = [Send(self.conn, Ack())] if self.conn is not None else []
        return [*ack, verdict]
