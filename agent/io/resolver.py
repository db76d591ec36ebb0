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

import functools
import socket
import struct
from collections.abc import Sequence

import anyio

from agent.core.inputs import Resolution
from agent.core.timing import DEFAULT_TIMING
from agent.io.dnswire import NO_SERVER, Failed, Queries, Reply, Server, in_turn, marked_late, ours
from agent.io.lines import LineReader
from agent.io.tcp import open_tcp

__all__ = ["Resolution", "Resolver"]


class Resolver:
    def __init__(
        self,
        servers: Sequence[Server],
        *,
        attempt_timeout: float = DEFAULT_TIMING.dns_timeout,
        answer_wait: float = DEFAULT_TIMING.dns_answer_wait,
    ) -> None:
        if not servers:
            raise ValueError(NO_SERVER)
        self._servers = tuple(servers)
        self._lifetime, self._wait = attempt_timeout, max(answer_wait, attempt_timeout)
        self._queries = Queries()

    async def _udp(self, server: Server, query: bytes) -> bytes:
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
                if ours(wire, query):
                    return wire

    async def _tcp(self, server: Server, query: bytes) -> bytes:
        async with await open_tcp(*server) as stream:  # servers are IP addresses (config)
            await stream.send(struct.pack("!H", len(query)) + query)
            reader = LineReader(stream)
            (length,) = struct.unpack("!H", await reader.receive_exactly(2))
            return await reader.receive_exactly(length)

    async def _ask(self, name: str, rdtype: int, server: Server, budget: float) -> Reply:
        udp, tcp = functools.partial(self._udp, server), functools.partial(self._tcp, server)
        try:
            with anyio.fail_after(budget):
                return await self._queries.ask(name, rdtype, udp, tcp)
        except (
            anyio.EndOfStream,
            anyio.IncompleteRead,
            anyio.BrokenResourceError,  # a TCP answer reset half-way
        ):
            raise Failed("DNS error: connection closed") from None

    async def _lookup(self, name: str, rdtype: int) -> Reply:
        ask = functools.partial(self._ask, name, rdtype)
        times = (self._lifetime, self._wait)
        return await in_turn(self._servers, times, anyio.current_time, ask)

    async def addresses(self, name: str) -> Resolution:
        """A or AAAA records, whichever family the cluster publishes (``Queries.addresses``),
        marked late when they came after ``attempt_timeout``."""
        start = anyio.current_time()
        resolution = await self._queries.addresses(name, self._lookup)
        return marked_late(resolution, anyio.current_time() - start, self._lifetime)
