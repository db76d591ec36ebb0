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

import socket
from collections.abc import Callable, Coroutine
from typing import Any

import anyio
import anyio.lowlevel

from agent.io.accepting import Accepting
from agent.io.sockets import ABANDONED_AFTER, listen
from agent.io.supervisor import Supervisor
from agent.io.tcp import TCPStream

__all__ = ["ABANDONED_AFTER", "listen", "serve"]

Handler = Callable[[TCPStream], Coroutine[Any, Any, None]]


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
    accepting = Accepting(
        supervisor.failure, kind=kind, half_close=half_close, abandoned_after=abandoned_after
    )
    async with anyio.create_task_group() as tg:
        while True:
            taken = accepting.take(sock)
            if taken is None:
                await anyio.wait_readable(sock)
                continue
            if isinstance(taken, float):
                if taken:
                    await anyio.sleep(taken)
                continue
            conn, peer = taken
            tg.start_soon(supervisor.connection, kind, handler, TCPStream(conn, peer), peer)
            # The handler counts itself among the contacts (and drops one when they are too
            # many) before the next is accepted: the descriptors stay within limits.fds_needed.
            await anyio.lowlevel.checkpoint()
