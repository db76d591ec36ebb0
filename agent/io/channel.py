"""A connection carrying wire messages (the anyio driver's), for the handshake's two halves
(``agent.io.handshakes``, re-exported here) and a barrier session.

Every receive has a deadline, so a peer that sends half a message and waits holds nothing.
"""

from __future__ import annotations

import socket

import anyio
import anyio.abc
import anyio.lowlevel

from agent.core.timing import Timing
from agent.errors import WireError
from agent.io.handshakes import LATE, HandshakeFailed, client_handshake, server_handshake
from agent.io.lines import LineReader
from agent.io.sockets import keepalive
from agent.io.tcp import TCPStream
from agent.protocol.wire import MAX_MESSAGE, Message, decode, encode

__all__ = [
    "LATE",
    "Channel",
    "HandshakeFailed",
    "client_handshake",
    "server_handshake",
]


def _socket_of(stream: anyio.abc.SocketStream) -> socket.socket:
    """TypedAttributeLookupError: a stream without a socket."""
    if isinstance(stream, TCPStream):
        return stream.sock
    return stream.extra(anyio.abc.SocketAttribute.raw_socket)


class Channel:
    def __init__(self, stream: anyio.abc.SocketStream) -> None:
        self.stream = stream
        self._reader = LineReader(stream)
        # Known, or read once, now: once the other side has reset the connection the socket no
        # longer knows its peer, and asking then raised out of the connection's task (the whole
        # agent).
        self._peer = stream.peer if isinstance(stream, TCPStream) else ""
        if not self._peer:
            try:
                self._peer = str(_socket_of(stream).getpeername()[0])
            except (anyio.TypedAttributeLookupError, OSError):
                self._peer = ""
        # Only agent.io.tcp's stream is a plain socket to write to directly (an asyncio transport
        # may hold bytes not sent yet, which a direct write would overtake).
        self._sock = stream.sock if isinstance(stream, TCPStream) else None

    @property
    def peer_address(self) -> str:
        """The other side's address; '' when it was gone before the connection was accepted."""
        return self._peer

    async def send(self, message: Message) -> None:
        await self.stream.send(encode(message))

    async def say(self, message: Message) -> None:
        """A handshake's send: a connection that broke meanwhile is a WireError, like a
        receive's. A cancellation already called is honoured first: on a plain socket whose data
        is in, nothing else in a handshake waits, and a contact dropped for a newcomer while it
        waited to run (at 10,000 members) still replied, so its peer took a closed session for
        open."""
        await anyio.lowlevel.checkpoint_if_cancelled()
        try:
            await self.send(message)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError) as exc:
            raise WireError("connection closed") from exc
        except OSError as exc:
            raise WireError(f"connection failed: {exc.strerror or exc}") from None

    def write_nowait(self, data: bytes) -> bytes:
        """Hand encoded messages to the socket without waiting: returns what it did not take
        (all of it on a stream without a plain socket), for :meth:`write`. OSError: broken."""
        if self._sock is None:
            return data
        try:
            sent = self._sock.send(data)
        except BlockingIOError:
            return data
        return data[sent:]

    async def write(self, data: bytes) -> None:
        await self.stream.send(data)

    async def receive(self, timeout: float | None) -> Message:
        """The next message; WireError when malformed, oversized, closed or late. ``timeout``
        None: no deadline of its own (a session's, or one the caller has set)."""
        try:
            if timeout is None:  # a cancel scope costs more than the receive itself
                line = await self._reader.receive_until(b"\n", MAX_MESSAGE)
            else:
                with anyio.fail_after(timeout):
                    line = await self._reader.receive_until(b"\n", MAX_MESSAGE)
        except anyio.DelimiterNotFound:
            raise WireError(f"message over {MAX_MESSAGE} bytes") from None
        except TimeoutError:
            raise WireError(LATE) from None
        except (
            anyio.EndOfStream,
            anyio.IncompleteRead,
            anyio.BrokenResourceError,
            anyio.ClosedResourceError,
        ):
            raise WireError("connection closed") from None
        except OSError as exc:
            raise WireError(f"connection failed: {exc.strerror or exc}") from None
        return decode(line)

    def keepalive(self, timing: Timing) -> None:
        """Detect a peer that vanished without closing (a deleted pod) within
        ``timing.keepalive`` seconds (about ten)."""
        keepalive(_socket_of(self.stream), timing)

    async def aclose(self) -> None:
        await self.stream.aclose()
