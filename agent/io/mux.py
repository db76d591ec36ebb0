"""One agent port, several barriers: each connection goes to the barrier its hello names.

``run --exit-barrier`` runs two instances of the barrier in one process: the start barrier (kept
serving after its release, so a peer still starting is answered) and the exit barrier. Both
listen on the agent's one port; the exit barrier's identity differs in its uid (see
``agent.commands.leave``), and every connection opens with the caller's hello, so the first
line read says which instance it is for. The line is then handed back, unread, with the
connection: the instance's own handshake reads it as if it came first.

A hello for an instance not registered (yet) goes to the first registered, the start barrier:
there, a pod whose exit barrier has begun is a stranger, answered with the start barrier's
identity, and keeps probing until this pod's exit barrier runs too.
"""

from __future__ import annotations

import collections
import itertools
import socket
from collections.abc import Callable, Coroutine
from typing import Any

import anyio
from anyio.streams.buffered import BufferedByteReceiveStream

from agent.config.model import Config
from agent.core.timing import DEFAULT_TIMING
from agent.errors import ConfigError, WireError
from agent.io import listener
from agent.io.limits import MAX_HANDSHAKING
from agent.io.tcp import TCPStream
from agent.protocol.wire import MAX_MESSAGE, Hello, Identity, decode

__all__ = ["Mux", "open_port"]

Handler = Callable[[TCPStream], Coroutine[Any, Any, None]]


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


def _key(identity: Identity) -> tuple[str, str]:
    return identity.job, identity.uid


class _Replayed(TCPStream):
    """The connection with the bytes read ahead given back first."""

    def __init__(self, sock: socket.socket, head: bytes) -> None:
        super().__init__(sock)
        self._head = head

    async def receive(self, max_bytes: int = 65536) -> bytes:
        if self._head:
            data, self._head = self._head[:max_bytes], self._head[max_bytes:]
            return data
        return await super().receive(max_bytes)


class Mux:
    def __init__(self) -> None:
        self._handlers: dict[tuple[str, str], Handler] = {}
        #: per registered instance, the instance id each index last said hello with (one per
        #: index at most: bounded by the peer count)
        self.heard: dict[tuple[str, str], dict[int, str]] = {}
        self._peers: dict[tuple[str, str], int] = {}
        #: connections whose hello is still awaited, oldest first, each cancellable
        self._reading: collections.OrderedDict[int, anyio.CancelScope] = collections.OrderedDict()
        self._keys = itertools.count()

    def register(self, me: Identity, handler: Handler) -> None:
        self._handlers[_key(me)] = handler
        self._peers[_key(me)] = me.peers
        self.heard.setdefault(_key(me), {})

    def heard_by(self, me: Identity) -> dict[int, str]:
        """Who said hello to instance ``me``: index → that pod's instance id."""
        return self.heard.get(_key(me), {})

    def unregister(self, me: Identity) -> None:
        self._handlers.pop(_key(me), None)  # what it heard stays, for heard_by

    async def serve(self, stream: TCPStream) -> None:
        """The listener's handler: read the hello (bounded in size and time), then hand the
        connection to its instance; garbage or silence costs only its own connection. As in
        ``Contacts.serve``, when too many are silent the one silent longest is dropped, not the
        newcomer: else a flood of silent connections would lock real peers out."""
        if len(self._reading) >= MAX_HANDSHAKING:
            self._reading.popitem(last=False)[1].cancel()
        key = next(self._keys)
        with anyio.CancelScope() as scope:
            self._reading[key] = scope
            try:
                await self._serve(stream, key)
            finally:
                self._reading.pop(key, None)
        if scope.cancelled_caught:
            await stream.aclose()

    async def _serve(self, stream: TCPStream, reading: int) -> None:
        reader = BufferedByteReceiveStream(stream)
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
            await stream.aclose()
            return
        handlers = list(self._handlers.values())
        if not isinstance(hello, Hello) or not handlers:
            await stream.aclose()
            return
        key = _key(hello.identity)
        handler = self._handlers.get(key)
        if handler is None:
            handler = handlers[0]
        elif hello.identity.index < self._peers[key]:
            self.heard[key][hello.identity.index] = hello.identity.instance
        await handler(_Replayed(stream.sock, line + b"\n" + bytes(reader.buffer)))
