"""The agent's port: incoming connections on plain non-blocking sockets, as outgoing ones are.

anyio's listener gives every connection an asyncio transport, whose send waits for the event
loop's next turn even when the socket takes the bytes at once: a coordinator's release to 10,000
members then took 10,000 turns, each also spent reading the acks of members released before. On
an ``agent.io.tcp`` stream a message goes out in one ``send`` call when the socket has room.

Nothing ends ``serve`` but cancellation: each connection's handler runs under the supervisor,
and every error of ``accept()`` is survived (out of descriptors or buffers: after a pause).

A connection its sender closed while it waited in the backlog is closed unread on the agent's
port: every client there waits for an answer with its side open, so it gave up (its deadline
passed) or died, and a session already closed can count for nothing. (The health port serves
them: an HTTP client may close its side and still read the answer.) Answering those in turn is
how an overloaded agent collapses: 300 agents on two cores once held 236,701 such sockets, each
still answered at its turn while the senders redialled, and the backlog never drained.
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
#: tcp_states.h: the peer has sent its FIN (Linux's TCP_INFO reports the state first)
_CLOSE_WAIT = 8


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


def _closed_by_peer(conn: socket.socket) -> bool:
    """Whether the sender closed the connection before it was accepted (Linux; elsewhere,
    never said, and the handler finds out when it reads)."""
    if _TCP_INFO is None:
        return False
    try:
        return conn.getsockopt(socket.IPPROTO_TCP, _TCP_INFO, 1)[0] == _CLOSE_WAIT
    except OSError:
        return False


_TCP_INFO: int | None = getattr(socket, "TCP_INFO", None)


def _peer(address: Any) -> str:
    return str(address[0]) if isinstance(address, tuple) and address else ""


async def serve(
    sock: socket.socket,
    handler: Handler,
    *,
    supervisor: Supervisor,
    kind: str = "contact",
    half_close: bool = False,
) -> None:
    """Accept connections until cancelled, each handled in a task of its own, supervised
    (a bug in ``handler`` is a ``kind`` bug that closes its connection only). ``half_close``:
    a client may close its side before the answer; if not, such a connection is dropped."""
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
            pause = PAUSE
            if not half_close and _closed_by_peer(conn):
                conn.close()
                continue
            try:
                conn.setblocking(False)
                # as anyio's streams: a small message must not wait for the ack of the one before
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                conn.close()
                continue
            tg.start_soon(supervisor.connection, kind, handler, TCPStream(conn), _peer(address))
            # The handler counts itself among the contacts (and drops one when they are too
            # many) before the next is accepted: the descriptors stay within limits.fds_needed.
            await anyio.lowlevel.checkpoint()
