"""One agent port, several barriers: each connection goes to the barrier its hello names.

``run --exit-barrier`` runs two instances of the barrier in one process: the start barrier (kept
serving after its release, so a peer still starting is answered) and the exit barrier; a
sidecar runs one more per named barrier. All listen on the agent's one port; every hello names
its barrier (``Identity.barrier``), so the first line read says which instance it is for. The
line is then handed back, unread, with the connection: the instance's own handshake reads it as
if it came first.

A hello for an instance not registered (yet) goes to the first registered, the start barrier
(``agent.protocol.routing``, the rule the in-memory cluster routes by too): there, a pod whose
exit barrier has begun is a stranger, answered with the start barrier's identity, and keeps
probing until this pod's exit barrier runs too.

Bounds: a connection counts against the port's one handshake bound (``agent.io.handshaking``)
from its accept until its barrier instance has proven it, never after: a Job of any size keeps
every member session. What every instance holds for parties DNS does not list is bounded once
for the port (``held``, ``agent.core.heldshare``), not once per instance. An instance that ends
(released and done, timed out, withdrawn) takes its connections with it, and the mux keeps
nothing about it.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Coroutine
from typing import Any

import anyio

from agent.config.model import Config
from agent.core.heldshare import HeldShare
from agent.core.log import Reporter
from agent.core.timing import DEFAULT_TIMING
from agent.errors import ConfigError, WireError
from agent.io import listener
from agent.io.handshaking import Handshaking, Ticket
from agent.io.lines import LineReader
from agent.io.tcp import TCPStream
from agent.protocol.routing import Key, key_of, route
from agent.protocol.wire import MAX_MESSAGE, Hello, Identity, decode

__all__ = ["Handler", "Mux", "open_port"]

#: an instance's handler: the connection (its hello given back first) and its place in the
#: handshake bound, to leave once the handshake has proven it
Handler = Callable[[TCPStream, Ticket], Coroutine[Any, Any, None]]


def open_port(config: Config) -> socket.socket:
    """The agent's listening socket, to share; ConfigError (exit 2) when it cannot be bound."""
    try:
        return listener.listen(config.listen, config.port)
    except OSError as exc:
        raise ConfigError(
            [
                f"--port / PEER_AGENT_PORT: cannot listen on port {config.port}: "
                f"{exc.strerror or exc}"
            ]
        ) from None


class _Replayed(TCPStream):
    """The connection with the bytes read ahead given back first."""

    def __init__(self, sock: socket.socket, head: bytes, peer: str) -> None:
        super().__init__(sock, peer)
        self._head = head

    async def receive(self, max_bytes: int = 65536) -> bytes:
        if self._head:
            data, self._head = self._head[:max_bytes], self._head[max_bytes:]
            return data
        return await super().receive(max_bytes)


async def _hello(stream: TCPStream) -> tuple[Hello, bytes] | None:
    """The hello a connection opens with, and every byte read (bounded in size and time);
    None for garbage, silence or a closed connection."""
    reader = LineReader(stream)
    try:
        with anyio.fail_after(DEFAULT_TIMING.handshake_timeout):
            line = await reader.receive_until(b"\n", MAX_MESSAGE)
        hello = decode(line)
    except (
        WireError,
        TimeoutError,
        OSError,
        anyio.DelimiterNotFound,
        anyio.EndOfStream,
        anyio.IncompleteRead,
        anyio.BrokenResourceError,
        anyio.ClosedResourceError,
    ):
        return None
    if not isinstance(hello, Hello):
        return None
    return hello, line + b"\n" + bytes(reader.buffer)


class Mux:
    def __init__(self, *, port: int = 0, report: Reporter | None = None) -> None:
        """``report``: where the handshake bound says, once, that it drops connections."""
        self._handlers: dict[Key, Handler] = {}
        #: per registered instance, the connections it serves, to end with it
        self._serving: dict[Key, set[anyio.CancelScope]] = {}
        self.handshaking = Handshaking(port=port, report=report)
        #: the held-session bound of every instance on this port, for their cores
        self.held = HeldShare()

    def register(self, me: Identity, handler: Handler) -> None:
        self._handlers[key_of(me)] = handler
        self._serving.setdefault(key_of(me), set())

    def unregister(self, me: Identity) -> None:
        """The instance has ended: its connections end with it (nothing would read them, and
        their ends would post into a queue that is gone); nothing about it is kept."""
        self._handlers.pop(key_of(me), None)
        for scope in self._serving.pop(key_of(me), ()):
            scope.cancel()

    async def serve(self, stream: TCPStream) -> None:
        """The listener's handler: read the hello, then hand the connection to its instance;
        garbage or silence costs only its own connection, and counts against the handshake
        bound until the instance has proven it (``agent.io.handshaking``)."""
        with self.handshaking.admit(stream.peer) as ticket:
            await self._serve(stream, ticket)
        if ticket.dropped:
            await stream.aclose()

    async def _serve(self, stream: TCPStream, ticket: Ticket) -> None:
        opened = await _hello(stream)
        key = None if opened is None else route(opened[0].identity, self._handlers)
        if opened is None or key is None:
            await stream.aclose()
            return
        head = opened[1]
        handler, serving = self._handlers[key], self._serving[key]
        with anyio.CancelScope() as scope:
            serving.add(scope)
            try:
                await handler(_Replayed(stream.sock, head, stream.peer), ticket)
            finally:
                serving.discard(scope)
        if scope.cancelled_caught:  # its instance ended
            await stream.aclose()
