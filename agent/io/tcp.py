"""Outgoing TCP connections (probes and a member's session) on a plain non-blocking socket.

``anyio.connect_tcp`` spends a task group, a task, an event, a worker thread to resolve the
source address and, on asyncio, a transport on every connection: over half the CPU of a sweep
of 4,090 peers. Peers are IP addresses, so a socket, one wait until it is writable, and reads
and writes as the socket allows are all it takes; anyio's ``wait_readable``/``wait_writable``
keep it working under asyncio and trio alike. No deadlines here: every caller sets its own.
"""

from __future__ import annotations

import socket

import anyio
import anyio.abc

from agent.io.sockets import connected

__all__ = ["TCPStream", "open_tcp"]


class TCPStream(anyio.abc.SocketStream):
    """A connected non-blocking socket as an anyio byte stream. A socket error becomes
    BrokenResourceError, as on anyio's own streams, so callers see the same failures.
    ``peer``: the other side's address when known (``accept`` and ``connect`` give it), so
    that no one need ask the kernel again; "" if not."""

    def __init__(self, sock: socket.socket, peer: str = "") -> None:
        self._sock = sock
        self.peer = peer

    @property
    def _raw_socket(self) -> socket.socket:
        return self._sock

    @property
    def sock(self) -> socket.socket:
        """The socket itself: anyio's ``extra()`` builds a dict of every attribute, asking the
        kernel for the peer's address, on each call."""
        return self._sock

    async def receive(self, max_bytes: int = 65536) -> bytes:
        while True:
            try:
                data = self._sock.recv(max_bytes)
            except BlockingIOError:
                await anyio.wait_readable(self._sock)
                continue
            except OSError as exc:
                raise self._failed(exc) from exc
            if not data:
                raise anyio.EndOfStream
            return data

    async def send(self, item: bytes) -> None:
        view = memoryview(item)
        while view:
            try:
                sent = self._sock.send(view)
            except BlockingIOError:
                await anyio.wait_writable(self._sock)
                continue
            except OSError as exc:
                raise self._failed(exc) from exc
            view = view[sent:]

    async def send_eof(self) -> None:
        self._sock.shutdown(socket.SHUT_WR)

    async def aclose(self) -> None:
        if self._sock.fileno() >= 0:
            anyio.notify_closing(self._sock)  # a task waiting on it gets ClosedResourceError
            self._sock.close()

    def close_unwatched(self) -> None:
        """Close, telling no one: for the one task that used the stream, once it no longer
        waits on it (a probe's end). ``notify_closing`` was a tenth of a probe's CPU."""
        self._sock.close()

    def _failed(self, exc: OSError) -> Exception:
        if self._sock.fileno() < 0:
            return anyio.ClosedResourceError()
        return anyio.BrokenResourceError()


async def open_tcp(address: str, port: int, source: str | None = None) -> TCPStream:
    """Connect to ``address`` (an IP address) from ``source`` when given; OSError when refused,
    unreachable, or when ``source`` cannot be bound."""
    return TCPStream(await connected(address, port, source, anyio.wait_writable), address)
