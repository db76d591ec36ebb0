"""Plain non-blocking sockets, for both drivers: the agent's listening socket, what an accepted
connection is set up with (or dropped unread for), and an outgoing connection's start.

The waits are the drivers' (``agent.io.listener`` and ``agent.io.tcp`` with anyio,
``agent.io.sync`` with selectors); why each choice was made is said here, once.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import struct
from collections.abc import Awaitable, Callable
from typing import Any

from agent.core.causes import Cause, Failure
from agent.core.timing import DEFAULT_TIMING, Timing

__all__ = [
    "ABANDONED_AFTER",
    "ITS_OWN",
    "MAX_PAUSE",
    "PAUSE",
    "abandoned",
    "accepted",
    "connect_problem",
    "connect_timed_out",
    "connect_timeout",
    "connected",
    "keepalive",
    "listen",
    "outgoing",
    "peer_of",
]

BACKLOG = 4096  # members connect in bursts of thousands; beyond the backlog SYNs wait 1 s
#: accept(2): errors of the one connection being accepted, "treated like EAGAIN by retrying"
ITS_OWN = frozenset(
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


def abandoned(conn: socket.socket, after: float) -> bool:
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


def peer_of(address: Any) -> str:
    return str(address[0]) if isinstance(address, tuple) and address else ""


def accepted(conn: socket.socket) -> bool:
    """Set up an accepted connection; False (and closed) when it failed already."""
    try:
        conn.setblocking(False)
        # as anyio's streams: a small message must not wait for the ack of the one before
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:
        conn.close()
        return False
    return True


def outgoing(address: str, port: int, source: str | None) -> tuple[socket.socket, int]:
    """A non-blocking socket connecting to ``address`` (an IP address) from ``source`` when
    given, and ``connect_ex``'s code (EINPROGRESS: wait until writable, then read SO_ERROR);
    OSError when ``source`` cannot be bound."""
    sock = socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET)
    try:
        sock.setblocking(False)
        # as anyio's own streams: a small message must not wait for the ack of the one before
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if source:
            # Pick the port at connect, per destination: a port picked at bind must be free of
            # every connection from ``source``, and with thousands of peers (and their sockets
            # in TIME_WAIT) the kernel's search for one took more CPU than the probe itself.
            with contextlib.suppress(AttributeError, OSError):  # Linux only
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_BIND_ADDRESS_NO_PORT, 1)
            try:
                sock.bind((source, 0))
            except OSError as exc:
                raise OSError(exc.errno, f"cannot bind to {source}: {exc.strerror}") from None
        return sock, sock.connect_ex((address, port))
    except BaseException:
        sock.close()
        raise


async def connected(
    address: str,
    port: int,
    source: str | None,
    writable: Callable[[socket.socket], Awaitable[None]],
) -> socket.socket:
    """A socket connected to ``address`` (``outgoing``), once the driver's ``writable`` wait
    says the connect ended; OSError when refused or unreachable, or when ``source`` cannot be
    bound. The caller's deadline bounds the wait."""
    sock, code = outgoing(address, port, source)
    try:
        if code == errno.EINPROGRESS:
            await writable(sock)
            code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            raise OSError(code, os.strerror(code))
    except BaseException:
        sock.close()
        raise
    return sock


def keepalive(sock: socket.socket, timing: Timing) -> None:
    """Detect a peer that vanished without closing (a deleted pod) within
    ``timing.keepalive`` seconds (about ten)."""
    options = (
        ("TCP_KEEPIDLE", timing.keepalive_idle),
        ("TCP_KEEPINTVL", timing.keepalive_interval),
        ("TCP_KEEPCNT", timing.keepalive_count),
    )
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for name, value in options:
            if hasattr(socket, name):
                sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)
    except OSError:
        pass  # reset and closed already (EBADF): the session's first receive reports it


def connect_problem(exc: OSError, port: int) -> tuple[str, Cause]:
    """What users debug a failed connect with (refused, no route, …), and its cause."""
    refused = isinstance(exc, ConnectionRefusedError)
    text = "refused" if refused else exc.strerror or exc
    cause = Cause.CONNECT_REFUSED if refused else Cause.UNREACHABLE
    return f"connect to port {port}: {text}", cause


def connect_timed_out(port: int) -> str:
    return f"connect to port {port} timed out"


def connect_timeout(port: int) -> Failure:
    """A connect that timed out, as both drivers' probes and dials say it."""
    return Failure(connect_timed_out(port), Cause.CONNECT_TIMEOUT)
