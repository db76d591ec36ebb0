"""The agent's port: incoming connections on plain non-blocking sockets, as outgoing ones are.

anyio's listener gives every connection an asyncio transport, whose send waits for the event
loop's next turn even when the socket takes the bytes at once: a coordinator's release to 10,000
members then took 10,000 turns, each also spent reading the acks of members released before. On
an ``agent.tcp`` stream a message goes out in one ``send`` call when the socket has room.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Coroutine
from typing import Any

import anyio
import anyio.lowlevel

from agent.tcp import TCPStream

__all__ = ["listen", "serve"]

BACKLOG = 4096  # members connect in bursts of thousands; beyond the backlog SYNs wait 1 s


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


async def serve(sock: socket.socket, handler: Handler) -> None:
    """Accept connections until cancelled, each handled in a task of its own."""
    async with anyio.create_task_group() as tg:
        while True:
            try:
                conn, _ = sock.accept()
            except BlockingIOError:
                await anyio.wait_readable(sock)
                continue
            except ConnectionAbortedError:
                continue  # reset while still queued: it costs only itself
            conn.setblocking(False)
            # as anyio's own streams: a small message must not wait for the ack of the one before
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            tg.start_soon(handler, TCPStream(conn))
            # The handler counts itself among the contacts (and drops one when they are too
            # many) before the next is accepted: the descriptors stay within limits.fds_needed.
            await anyio.lowlevel.checkpoint()
