"""DNS on the selectors loop: what ``agent.io.resolver`` does with anyio, on the same wire code
(``agent.io.dnswire``): UDP first, TCP for a name whose answer did not fit, each server in turn
within one lifetime shared between them, the family that last answered asked first."""

from __future__ import annotations

import socket
import struct
from collections.abc import Sequence

from agent.core.inputs import Resolution
from agent.core.timing import DEFAULT_TIMING
from agent.io.dnswire import HEADER, Failed, Queries, Reply, marked_late, read, share
from agent.io.sync.conn import open_tcp
from agent.io.sync.loop import Loop, readable, writable

__all__ = ["Resolver"]


class Resolver:
    def __init__(
        self,
        loop: Loop,
        servers: Sequence[tuple[str, int]],
        *,
        attempt_timeout: float = DEFAULT_TIMING.dns_timeout,
        answer_wait: float = DEFAULT_TIMING.dns_answer_wait,
    ) -> None:
        if not servers:
            raise ValueError("no DNS server (no nameserver in /etc/resolv.conf; use --dns-server)")
        self._loop, self._servers, self._lifetime = loop, tuple(servers), attempt_timeout
        self._wait = max(answer_wait, attempt_timeout)
        self._queries = Queries()

    async def _udp(self, server: tuple[str, int], query: bytes, deadline: float) -> bytes:
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
                    if wire[:2] == query[:2] and len(wire) >= HEADER.size:
                        return wire
            finally:
                self._loop.forget(sock)

    async def _tcp(self, server: tuple[str, int], query: bytes, deadline: float) -> bytes:
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

    async def _ask(self, server: tuple[str, int], name: str, rdtype: int, deadline: float) -> Reply:
        query_id, query, question = self._queries.query(name, rdtype)
        if name not in self._queries.over_tcp:
            wire = await self._udp(server, query, deadline)
            reply = read(wire, question, query_id, rdtype)
            if not reply.truncated:
                return reply
            self._queries.over_tcp.add(name)
        reply = read(await self._tcp(server, query, deadline), question, query_id, rdtype)
        if not reply.addresses:
            raise Failed("DNS error: a truncated answer without records, even over TCP")
        return reply

    async def _lookup(self, name: str, rdtype: int) -> Reply:
        """Each server in turn (``share``)."""
        problems: list[str] = []
        clock = self._loop.clock
        start = clock()
        for left, server in zip(range(len(self._servers), 0, -1), self._servers, strict=True):
            budget = share(start, clock(), left, self._lifetime, self._wait)
            try:
                return await self._ask(server, name, rdtype, clock() + budget)
            except Failed as exc:
                problems.append(exc.problem)
            except TimeoutError:
                problems.append("DNS timeout")
            except OSError as exc:
                problems.append(f"DNS error: {exc.strerror or exc}")
        raise Failed(", ".join(sorted(set(problems))))

    async def addresses(self, name: str) -> Resolution:
        """A or AAAA records, whichever family the cluster publishes (``Queries.addresses``),
        marked late when they came after ``attempt_timeout``."""
        start = self._loop.clock()
        resolution = await self._queries.addresses(name, self._lookup)
        return marked_late(resolution, self._loop.clock() - start, self._lifetime)
