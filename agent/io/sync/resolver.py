"""DNS on the selectors loop: what ``agent.io.resolver`` does with anyio, on the same wire code
(``agent.io.dnswire``): UDP first, TCP for a name whose answer did not fit, each server in turn
within one lifetime shared between them, the family that last answered asked first."""

from __future__ import annotations

import functools
import socket
import struct
from collections.abc import Sequence

from agent.core.inputs import Resolution
from agent.core.timing import DEFAULT_TIMING
from agent.io.dnswire import NO_SERVER, Failed, Queries, Reply, Server, in_turn, marked_late, ours
from agent.io.sync.conn import open_tcp
from agent.io.sync.loop import Loop, readable, writable

__all__ = ["Resolver"]


class Resolver:
    def __init__(
        self,
        loop: Loop,
        servers: Sequence[Server],
        *,
        attempt_timeout: float = DEFAULT_TIMING.dns_timeout,
        answer_wait: float = DEFAULT_TIMING.dns_answer_wait,
    ) -> None:
        if not servers:
            raise ValueError(NO_SERVER)
        self._loop, self._servers, self._lifetime = loop, tuple(servers), attempt_timeout
        self._wait = max(answer_wait, attempt_timeout)
        self._queries = Queries()

    async def _udp(self, server: Server, deadline: float, query: bytes) -> bytes:
        address, port = server  # an IP address (config)
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.setblocking(False)
            sock.connect((address, port))
            sock.send(query)  # a datagram this small is sent whole or fails with OSError
            try:
                while True:  # a stray datagram (a late answer to an earlier query) is not ours
                    try:
                        wire = sock.recv(65535)
                    except BlockingIOError:
                        await readable(sock, deadline)
                        continue
                    if ours(wire, query):
                        return wire
            finally:
                self._loop.forget(sock)

    async def _tcp(self, server: Server, deadline: float, query: bytes) -> bytes:
        sock = await open_tcp(self._loop, server[0], server[1], None, deadline)
        try:
            data = memoryview(struct.pack("!H", len(query)) + query)
            while data:
                try:
                    data = data[sock.send(data) :]
                except BlockingIOError:
                    await writable(sock, deadline)
            wire = bytearray()
            while len(wire) < 2 or len(wire) < 2 + struct.unpack_from("!H", wire)[0]:
                try:
                    more = sock.recv(65537)
                except BlockingIOError:
                    await readable(sock, deadline)
                    continue
                if not more:
                    raise Failed("DNS error: connection closed")
                wire += more
            return bytes(wire[2 : 2 + struct.unpack_from("!H", wire)[0]])
        finally:
            self._loop.forget(sock)
            sock.close()

    async def _ask(self, name: str, rdtype: int, server: Server, budget: float) -> Reply:
        deadline = self._loop.clock() + budget
        udp = functools.partial(self._udp, server, deadline)
        return await self._queries.ask(
            name, rdtype, udp, functools.partial(self._tcp, server, deadline)
        )

    async def _lookup(self, name: str, rdtype: int) -> Reply:
        ask = functools.partial(self._ask, name, rdtype)
        times = (self._lifetime, self._wait)
        return await in_turn(self._servers, times, self._loop.clock, ask)

    async def addresses(self, name: str) -> Resolution:
        """A or AAAA records, whichever family the cluster publishes (``Queries.addresses``),
        marked late when they came after ``attempt_timeout``."""
        start = self._loop.clock()
        resolution = await self._queries.addresses(name, self._lookup)
        return marked_late(resolution, self._loop.clock() - start, self._lifetime)
