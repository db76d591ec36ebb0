"""Connections still proving who they are, bounded, and shared fairly between source addresses.

Every connection to the agent's port is *unproven* until its handshake is done: its hello read
and, with a token, its proof checked. A flood of connections that never get there (silent,
stalled mid-hello, junk) must neither use up the descriptors nor lock real peers out, so at most
``limit`` are unproven at once; a newcomer beyond that drops the oldest connection of the source
address that holds the most (``agent.core.fairshare``): a flood from a few addresses turns over
only its own share, however fast it reopens what is dropped, and a peer at another address
finishes its handshake. A proven connection (a probe being answered, a member's session) has
left the set: the bound never touches it, however long it lives. The first drop is said once
per bound.

One ``Handshaking`` serves one port: with the shared port (``agent.io.mux``) a connection is
admitted when accepted and stays counted, through the hand-over to its barrier instance, until
that instance's handshake proves it (the ``Ticket`` travels with the connection). The health
port bounds the same way the connections that have not sent a whole request yet.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from agent.core.fairshare import FairShare
from agent.core.log import LogKind, LogLevel, LogLine, Reporter
from agent.io import limits

__all__ = ["Handshaking", "Ticket"]


class Ticket:
    """One admitted connection's place in the bound."""

    def __init__(
        self, bound: Handshaking, key: int, address: str, cancel: Callable[[], None]
    ) -> None:
        #: ``cancel``: ends the connection's handling (its driver's way: a cancel scope, a task)
        self._bound, self.key, self.address, self.cancel = bound, key, address, cancel
        #: dropped for a newcomer: its block was cancelled, its connection is to be closed
        self.dropped = False

    def proven(self) -> None:
        """The handshake is done: never dropped for a newcomer from now on."""
        self._bound._leave(self)


class Handshaking:
    def __init__(
        self,
        *,
        limit: int | None = None,
        port: int = 0,
        report: Reporter | None = None,
        unproven: str = "still in their handshake",
        retried: str = "a peer's probe is retried",
    ) -> None:
        """``limit``: default ``limits.MAX_HANDSHAKING``; ``report``: where the first drop is
        said (once), naming ``port`` and what the connections are (``unproven``)."""
        self._limit, self._port, self._report, self._what = limit, port, report, unproven
        self._retried = retried  # what the warning says becomes of a dropped connection
        self._unproven: dict[int, Ticket] = {}
        self._share = FairShare()
        self._keys = itertools.count()
        self._said = False
        #: connections dropped so far for a newcomer
        self.drops = 0

    def __len__(self) -> int:
        return len(self._unproven)

    @property
    def limit(self) -> int:
        return limits.MAX_HANDSHAKING if self._limit is None else self._limit

    @contextmanager
    def admit(self, address: str = "") -> Iterator[Ticket]:
        """Count a new connection from ``address`` as unproven while the block runs (when full,
        dropping the oldest of the address holding the most); the block is cancelled if this
        one is dropped in turn."""
        import anyio  # the anyio driver's (imported by then); the selectors one calls enter

        with anyio.CancelScope() as scope:
            ticket = self.enter(address, scope.cancel)
            try:
                yield ticket
            finally:
                self._leave(ticket)

    def enter(self, address: str, cancel: Callable[[], None]) -> Ticket:
        """Count a new connection from ``address`` as unproven until its ticket is proven or
        :meth:`leave` is called (when full, dropping the oldest of the address holding the
        most, by its ``cancel``); ``cancel`` ends this one's handling if it is dropped in turn."""
        if len(self._unproven) >= self.limit:
            self._drop_for(address)
        key = next(self._keys)
        ticket = self._unproven[key] = Ticket(self, key, address, cancel)
        self._share.add(address, key)
        return ticket

    def leave(self, ticket: Ticket) -> None:
        """The connection's handling ended (proven or not)."""
        self._leave(ticket)

    def _leave(self, ticket: Ticket) -> None:
        if self._share.remove(ticket.address, ticket.key):
            del self._unproven[ticket.key]

    def _drop_for(self, newcomer: str) -> None:
        chosen = self._share.victim(newcomer)
        if chosen is None:
            return
        ticket = self._unproven[chosen[1]]
        self._leave(ticket)
        ticket.dropped = True
        ticket.cancel()
        self.drops += 1
        if not self._said and self._report is not None:
            self._said = True
            self._report(
                LogLine(
                    LogKind.WARNING,
                    f"port {self._port}: {self.limit} connections are {self._what}: "
                    "for each newcomer the address holding the most loses the one it has "
                    f"waited longest on ({self._retried}); what is past it (a "
                    f"session, a waiting client) never is (said once; the first came from "
                    f"{ticket.address or 'an unknown address'})",
                    {"bound": self.limit, "address": ticket.address},
                    level=LogLevel.WARNING,
                )
            )
