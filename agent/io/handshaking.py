"""Connections still proving who they are, bounded: beyond the bound, the one waiting longest goes.

Every connection to the agent's port is *unproven* until its handshake is done: its hello read
and, with a token, its proof checked. A flood of connections that never get there (silent,
stalled mid-hello, junk) must neither use up the descriptors nor lock real peers out, so at most
``limit`` are unproven at once; a newcomer beyond that drops the one unproven longest, not
itself. A proven connection (a probe being answered, a member's session) has left the set: the
bound never touches it, however long it lives. The first drop is said once per bound.

One ``Handshaking`` serves one port: with the shared port (``agent.io.mux``) a connection is
admitted when accepted and stays counted, through the hand-over to its barrier instance, until
that instance's handshake proves it (the ``Ticket`` travels with the connection). The health
port bounds the same way the connections that have not sent a whole request yet.
"""

from __future__ import annotations

import collections
import itertools
from collections.abc import Iterator
from contextlib import contextmanager

import anyio

from agent.core.log import LogKind, LogLevel, LogLine, Reporter
from agent.io import limits

__all__ = ["Handshaking", "Ticket"]


class Ticket:
    """One admitted connection's place in the bound."""

    def __init__(self, bound: Handshaking, key: int, scope: anyio.CancelScope) -> None:
        self._bound, self._key, self.scope = bound, key, scope
        #: dropped for a newcomer: its block was cancelled, its connection is to be closed
        self.dropped = False

    def proven(self) -> None:
        """The handshake is done: never dropped for a newcomer from now on."""
        self._bound._unproven.pop(self._key, None)


class Handshaking:
    def __init__(
        self,
        *,
        limit: int | None = None,
        port: int = 0,
        report: Reporter | None = None,
        unproven: str = "still in their handshake",
    ) -> None:
        """``limit``: default ``limits.MAX_HANDSHAKING``; ``report``: where the first drop is
        said (once), naming ``port`` and what the connections are (``unproven``)."""
        self._limit, self._port, self._report, self._what = limit, port, report, unproven
        self._unproven: collections.OrderedDict[int, Ticket] = collections.OrderedDict()
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
    def admit(self) -> Iterator[Ticket]:
        """Count a new connection as unproven while the block runs (dropping the one unproven
        longest when full); the block is cancelled if this one is dropped in turn."""
        if len(self._unproven) >= self.limit:
            self._drop_oldest()
        key = next(self._keys)
        with anyio.CancelScope() as scope:
            ticket = self._unproven[key] = Ticket(self, key, scope)
            try:
                yield ticket
            finally:
                self._unproven.pop(key, None)

    def _drop_oldest(self) -> None:
        _, ticket = self._unproven.popitem(last=False)
        ticket.dropped = True
        ticket.scope.cancel()
        self.drops += 1
        if not self._said and self._report is not None:
            self._said = True
            self._report(
                LogLine(
                    LogKind.WARNING,
                    f"port {self._port}: {self.limit} connections are {self._what}: "
                    "for each newcomer the one waiting longest is dropped (a peer's probe is "
                    "retried); what is past it (a session, a waiting client) never is "
                    "(said once)",
                    {"bound": self.limit},
                    level=LogLevel.WARNING,
                )
            )
