"""The agent's port: incoming connections on plain non-blocking sockets, as outgoing ones are.

anyio's listener gives every connection an asyncio transport, whose send waits for the event
loop's next turn even when the socket takes the bytes at once: a coordinator's release to 10,000
members then took 10,000 turns, each also spent reading the acks of members released before. On
an ``agent.io.tcp`` stream a message goes out in one ``send`` call when the socket has room.

Nothing ends ``serve`` but cancellation: each connection's handler runs under the supervisor,
and every error of ``accept()`` is survived (out of descriptors or buffers: after a pause).
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable, Coroutine
from typing import Any

import anyio
import anyio.lowlevel

from agent.io.supervisor import Supervisor
from agent.io.tcp import TCPStream

__all__ = ["listen", "serve"]

BACKLOG = 4096  # members connect in bursts of thousands; beyond the backlog SYNs wait 1 s
#: accept(2): errors of the one connection being accepted, "treated like EAGAIN by retrying"
_ITS_OWN = frozenset(
    {
        errno.ECONNABORTED,
        errno.EPROTO,
        errno.ENETDOWN,
        errno.ENOPROTOOPT,
        errno.EHOSTDOWN,
        errno.ENONET,
        errno.EHOSTUNREACH,
        errno.EOPNOTSUPP,
        errno.ENETUNREACH,
        errno.EPERM,  # a firewall rule refused it
        errno.EINTR,
    }
)
#: after any other error (EMFILE, ENFILE, ENOBUFS, ENOMEM, ...): the connection waits in the
#: backlog, readable at once, so retrying without a pause would spin; the pause doubles
PAUSE, MAX_PAUSE = 0.05, 1.0


def listen(host: str | None, port: int) -> socket.socket:
    """A listening socket on ``host`` (an IP address), or on every address of both families;
    OSError when the port cannot be bound."""
    if host is None and socket.has_dualstack_ipv6():
        try:
            sock = socket.create_server(
                ("::", port), family=socket.AF_INET6, backlog=BACKLOG, dualstack_ipv6=True
            )
        except OSError:  # IPv6 switched off in this pod: IPv4 alone
            sock = socket.create_server(("0.0.0.0", port), backlog=BACKLOG)
    elif host is None:
        sock = socket.create_server(("0.0.0.0", port), backlog=BACKLOG)
    else:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.create_server((host, port), family=family, backlog=BACKLOG)
    sock.setblocking(False)
    return sock


Handler = Callable[[TCPStream], Coroutine[Any, Any, None]]


def _peer(address: Any) -> str:
    return str(address[0]) if isinstance(address, tuple) and address else ""


async def serve(
    sock: socket.socket, handler: Handler, *, supervisor: Supervisor, kind: str = "contact"
) -> None:
    """Accept connections until cancelled, each handled in a task of its own, supervised
    (a bug in ``handler`` is a ``kind`` bug that closes its connection only)."""
    pause = PAUSE
    async with anyio.create_task_group() as tg:
        while True:
            try:
                conn, address = sock.accept()
            except BlockingIOError:
                await anyio.wait_readable(sock)
                continue
            except OSError as exc:
                if exc.errno in _ITS_OWN:
                    continue  # it costs only the connection it was about
                supervisor.failure(f"accepting a {kind} connection", exc)
                await anyio.sleep(pause)
                pause = min(2 * pause, MAX_PAUSE)
                continue
            pause, peer = PAUSE, _peer(address)
            try:
                conn.setblocking(False)
                # as anyio's streams: a small message must not wait for the ack of the one before
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                conn.close()
                continue
            tg.start_soon(supervisor.connection, kind, handler, TCPStream(conn, peer), peer)
            # The handler counts itself among the contacts (and drops one when they are too
            # many) before the next is accepted: the descriptors stay within limits.fds_needed.
            await anyio.lowlevel.checkpoint()
