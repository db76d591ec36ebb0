"""DNS adapter: A/AAAA lookups over UDP and TCP with anyio, dnspython for what is unusual.

Why not dnspython's resolver: it builds an object per record (about 24 µs each), so a waiting
agent spent 6 ms a round on a 256-pod Service and 100 ms on 4,091 pods — CPU that N agents on
one node pay N times a second. The usual answer (address records whose owner points back at the
question) is read straight off the wire here; anything else goes through dnspython's parser.
It also says when an answer was cut (a Service of thousands of pods overflows even TCP's 64 KiB),
so the caller can ask for the missing peers by name.

The wire's part (queries, answers, which family next) is ``agent.io.dnswire``, shared with the
selectors driver. No cache (a name not yet published must be asked again, not remembered as
missing), absolute names only, every exchange under a deadline, and names of failures as users
debug them.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Sequence

import anyio

from agent.core.inputs import Resolution
from agent.core.timing import DEFAULT_TIMING
from agent.io.dnswire import HEADER, Failed, Queries, Reply, marked_late, read, share
from agent.io.lines import LineReader
from agent.io.tcp import open_tcp

__all__ = ["Resolution", "Resolver"]


class Resolver:
    def __init__(
        self,
        servers: Sequence[tuple[str, int]],
        *,
        attempt_timeout: float = DEFAULT_TIMING.dns_timeout,
        answer_wait: float = DEFAULT_TIMING.dns_answer_wait,
    ) -> None:
        if not servers:
            raise ValueError("no DNS server (no nameserver in /etc/resolv.conf; use --dns-server)")
        self._servers = tuple(servers)
        self._lifetime, self._wait = attempt_timeout, max(answer_wait, attempt_timeout)
        self._queries = Queries()

    async def _udp(self, server: tuple[str, int], query: bytes, query_id: int) -> bytes:
        # A plain non-blocking socket, as agent.io.tcp: anyio's UDP socket resolves the server's
        # address in a worker thread on every query, and a thread of the agent's is one that
        # does not block the signals agent.commands.leave blocks once the workload's code is
        # decided.
        address, port = server  # an IP address (config)
        with socket.socket(
            socket.AF_INET6 if ":" in address else socket.AF_INET, socket.SOCK_DGRAM
        ) as sock:
            sock.setblocking(False)
            sock.connect((address, port))
            sock.send(query)  # a datagram this small is sent whole or fails with OSError
            while True:  # a stray datagram (a late answer to an earlier query) is not ours
                try:
                    wire = sock.recv(65535)
                except BlockingIOError:
                    await anyio.wait_readable(sock)
                    continue
                if wire[:2] == query[:2] and len(wire) >= HEADER.size:
                    return wire

    async def _tcp(self, server: tuple[str, int], query: bytes) -> bytes:
        async with await open_tcp(*server) as stream:  # servers are IP addresses (config)
            await stream.send(struct.pack("!H", len(query)) + query)
            reader = LineReader(stream)
            (length,) = struct.unpack("!H", await reader.receive_exactly(2))
            return await reader.receive_exactly(length)

    async def _ask(self, server: tuple[str, int], name: str, rdtype: int) -> Reply:
        query_id, query, question = self._queries.query(name, rdtype)
        if name not in self._queries.over_tcp:
            reply = read(await self._udp(server, query, query_id), question, query_id, rdtype)
            if not reply.truncated:
                return reply
            self._queries.over_tcp.add(name)
        reply = read(await self._tcp(server, query), question, query_id, rdtype)
        if not reply.addresses:
            raise Failed("DNS error: a truncated answer without records, even over TCP")
        return reply

    async def _lookup(self, name: str, rdtype: int) -> Reply:
        """Each server in turn (``share``)."""
        problems: list[str] = []
        start = anyio.current_time()
        for left, server in zip(range(len(self._servers), 0, -1), self._servers, strict=True):
            budget = share(start, anyio.current_time(), left, self._lifetime, self._wait)
            try:
                with anyio.fail_after(budget):
                    return await self._ask(server, name, rdtype)
            except Failed as exc:
                problems.append(exc.problem)
            except TimeoutError:
                problems.append("DNS timeout")
            except (
                OSError,
                anyio.EndOfStream,
                anyio.IncompleteRead,
                anyio.BrokenResourceError,  # a TCP answer reset half-way
            ) as exc:
                text = exc.strerror if isinstance(exc, OSError) else "connection closed"
                problems.append(f"DNS error: {text or exc}")
        raise Failed(", ".join(sorted(set(problems))))

    async def addresses(self, name: str) -> Resolution:
        """A or AAAA records, whichever family the cluster publishes (``Queries.addresses``),
        marked late when they came after ``attempt_timeout``."""
        start = anyio.current_time()
        resolution = await self._queries.addresses(name, self._lookup)
        return marked_late(resolution, anyio.current_time() - start, self._lifetime)
