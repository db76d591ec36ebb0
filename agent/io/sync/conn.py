"""A connection carrying wire messages on the selectors loop: what ``agent.io.channel`` is to
the anyio driver, with the same failures (``WireError`` with the same words), so the shared
handshakes (``agent.io.handshakes``) and the core see no difference.

A receive's deadline is its ``timeout``, or with None the connection's ``deadline`` (a probe's
one deadline for its whole handshake; None on a session, which the keepalive bounds).
"""

from __future__ import annotations

import socket

from agent.errors import WireError
from agent.io.handshakes import LATE
from agent.io.sockets import connected
from agent.io.sync.loop import Loop, readable, writable
from agent.protocol.wire import MAX_MESSAGE, Message, decode, encode

__all__ = ["Conn", "open_tcp"]

_CLOSED = "connection closed"


class Conn:
    __slots__ = ("_buffer", "deadline", "loop", "peer", "sock")

    def __init__(self, loop: Loop, sock: socket.socket, peer: str = "") -> None:
        self.loop, self.sock, self.peer = loop, sock, peer
        self._buffer = bytearray()
        self.deadline: float | None = None

    @property
    def peer_address(self) -> str:
        return self.peer

    async def receive(self, timeout: float | None) -> Message:
        """The next message; WireError when malformed, oversized, closed or late."""
        deadline = self.deadline if timeout is None else self.loop.clock() + timeout
        buffer, offset = self._buffer, 0
        while (found := buffer.find(b"\n", offset)) < 0:
            if len(buffer) >= MAX_MESSAGE:
                raise WireError(f"message over {MAX_MESSAGE} bytes")
            offset = len(buffer)
            buffer += await self._more(deadline)
        line = bytes(buffer[:found])
        del buffer[: found + 1]
        return decode(line)

    async def _more(self, deadline: float | None) -> bytes:
        while True:
            try:
                data = self.sock.recv(65536)
            except BlockingIOError:
                try:
                    await readable(self.sock, deadline)
                except TimeoutError:
                    raise WireError(LATE) from None
                except OSError:
                    raise WireError(_CLOSED) from None
                continue
            except OSError:
                raise WireError(_CLOSED) from None
            if not data:
                raise WireError(_CLOSED)
            return data

    async def say(self, message: Message) -> None:
        """A handshake's send, within the connection's deadline; WireError when broken."""
        try:
            await self.write(encode(message), self.deadline)
        except TimeoutError:
            raise WireError(LATE) from None
        except OSError:
            raise WireError(_CLOSED) from None

    def write_nowait(self, data: bytes) -> bytes:
        """What the socket did not take of ``data``. OSError: broken."""
        try:
            sent = self.sock.send(data)
        except BlockingIOError:
            return data
        return data[sent:]

    async def write(self, data: bytes, deadline: float | None) -> None:
        """All of ``data``; OSError when broken, TimeoutError past ``deadline``."""
        view = memoryview(data)
        while view:
            try:
                sent = self.sock.send(view)
            except BlockingIOError:
                await writable(self.sock, deadline)
                continue
            view = view[sent:]

    def close(self) -> None:
        if self.sock.fileno() >= 0:
            self.loop.forget(self.sock)
            self.sock.close()


async def open_tcp(
    loop: Loop, address: str, port: int, source: str | None, deadline: float
) -> socket.socket:
    """A connected socket; OSError when refused or unreachable, TimeoutError past
    ``deadline``."""
    return await connected(address, port, source, lambda sock: writable(sock, deadline))
