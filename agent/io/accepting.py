"""What a listener makes of each ``accept()``, written once for both drivers
(``agent.io.listener.serve`` on anyio, the selectors driver's accept task): the driver only
waits, sleeps, and starts a task for each connection it is given.

Every error of ``accept()`` is survived: one about the connection itself costs only that
connection; running out of descriptors or buffers is reported and retried after a pause that
doubles up to ``MAX_PAUSE``. A connection abandoned in the backlog (``sockets.abandoned``) is
closed unread unless a client may half-close (the health port).
"""

from __future__ import annotations

import socket
from collections.abc import Callable

from agent.io.sockets import (
    ABANDONED_AFTER,
    ITS_OWN,
    MAX_PAUSE,
    PAUSE,
    abandoned,
    accepted,
    peer_of,
)

__all__ = ["Accepting"]


class Accepting:
    __slots__ = ("abandoned_after", "failure", "half_close", "kind", "pause")

    def __init__(
        self,
        failure: Callable[[str, OSError], None],
        *,
        kind: str = "contact",
        half_close: bool = False,
        abandoned_after: float = ABANDONED_AFTER,
    ) -> None:
        """``failure``: reports an error of ``accept()`` that is not the connection's own (the
        supervisor's)."""
        self.failure, self.kind, self.half_close = failure, kind, half_close
        self.abandoned_after, self.pause = abandoned_after, PAUSE

    def take(self, sock: socket.socket) -> tuple[socket.socket, str] | float | None:
        """One ``accept()`` on ``sock``: a connection set up to serve, with its peer's address;
        or None: wait until ``sock`` is readable; or seconds to sleep before the next (0: none,
        take it at once)."""
        try:
            conn, address = sock.accept()
        except BlockingIOError:
            return None
        except OSError as exc:
            if exc.errno in ITS_OWN:
                return 0.0  # it costs only the connection it was about
            self.failure(f"accepting a {self.kind} connection", exc)
            pause, self.pause = self.pause, min(2 * self.pause, MAX_PAUSE)
            return pause
        self.pause = PAUSE
        if not self.half_close and abandoned(conn, self.abandoned_after):
            conn.close()
            return 0.0
        if not accepted(conn):  # closed already
            return 0.0
        return conn, peer_of(address)
