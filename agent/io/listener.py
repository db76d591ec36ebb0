"""The agent's port: incoming connections on plain non-blocking sockets, as outgoing ones are.

anyio's listener gives every connection an asyncio transport, whose send waits for the event
loop's next turn even when the socket takes the bytes at once: a coordinator's release to 10,000
members then took 10,000 turns, each also spent reading the acks of members released before. On
an ``agent.io.tcp`` stream a message goes out in one ``send`` call when the socket has room.

Nothing ends ``serve`` but cancellation: each connection's handler runs under the supervisor,
and every error of ``accept()`` is survived (out of descriptors or buffers: after a pause).

A connection its sender closed while it waited in the backlog, and that sent nothing for longer
than a peer's handshake deadline, is closed unread on the agent's port: a peer waits that long
for the answer and then gives up, so nobody will read it, and a session already closed can
count for nothing. (One that closed its side just now, as ``printf LINE | nc`` does, is served;
the health port serves every one: an HTTP client may close its side and still read the answer.)
Answering abandoned probes in turn is how an overloaded agent collapses: 300 agents on two
cores once held 236,701 such sockets, each still answered at its turn while the senders
redialled, and the backlog never drained.
"""

from __future__ import annotations

import errno
import socket
import struct
from collections.abc import Callable, Coroutine
from typing import Any

import anyio
import anyio.lowlevel

from agent.core.timing import DEFAULT_TIMING
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
#: tcp_states.h: the peer has sent its FIN (Linux's TCP_INFO reports the state first, and
#: tcpi_last_data_recv, milliseconds since data last came, at byte 52)
_CLOSE_WAIT = 8
_LAST_DATA_RECV = struct.Struct("=I")
_TCP_INFO_BYTES = 56
#: a closed connection whose data is this old was given up by its sender
ABANDONED_AFTER = DEFAULT_TIMING.handshake_timeout


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


def _abandoned(conn: socket.socket, after: float) -> bool:
    """Whether the sender closed the connection before it was accepted, and sent nothing for
    ``after`` seconds (Linux; elsewhere, never said, and the handler finds out when it reads)."""
    if _TCP_INFO is None:
        return False
    try:
        info = conn.getsockopt(socket.IPPROTO_TCP, _TCP_INFO, _TCP_INFO_BYTES)
    except OSError:
        return False
    if len(info) < _TCP_INFO_BYTES or info[0] != _CLOSE_WAIT:
        return False
    quiet_ms: int = _LAST_DATA_RECV.unpack_from(info, 52)[0]
    return quiet_ms >= after * 1000


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
    abandoned_after: float = ABANDONED_AFTER,
) -> None:
    """Accept connections until cancelled, each handled in a task of its own, supervised
    (a bug in ``handler`` is a ``kind`` bug that closes its connection only). ``half_close``:
    a client may close its side long before it reads the answer; if not, a connection closed
    with nothing sent for ``abandoned_after`` seconds is dropped unread."""
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
            if not half_close and _abandoned(conn, abandoned_after):
                conn.close()
                continue
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
