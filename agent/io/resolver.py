"""DNS adapter: A/AAAA lookups over UDP and TCP with anyio, dnspython for what is unusual.

Why not dnspython's resolver: it builds an object per record (about 24 µs each), so a waiting
agent spent 6 ms a round on a 256-pod Service and 100 ms on 4,091 pods — CPU that N agents on
one node pay N times a second. The usual answer (address records whose owner points back at the
question) is read straight off the wire here; anything else goes through dnspython's parser.
It also says when an answer was cut (a Service of thousands of pods overflows even TCP's 64 KiB),
so the caller can ask for the missing peers by name.

No cache (a name not yet published must be asked again, not remembered as missing), absolute
names only, every exchange under a deadline, and names of failures as users debug them.
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Sequence

import anyio

from agent.core.causes import Cause, Failure
from agent.core.inputs import Resolution
from agent.core.timing import DEFAULT_TIMING
from agent.io.lines import LineReader
from agent.io.tcp import open_tcp
from agent.values import value

__all__ = ["Resolution", "Resolver"]

#: the EDNS payload size of DNS Flag Day 2020: about 70 addresses fit a UDP answer
UDP_PAYLOAD = 1232
_HEADER = struct.Struct("!HHHHHH")
_RECORD = struct.Struct("!HHHIH")  # owner pointer, type, class, TTL, rdata length
_POINTER_TO_QUESTION = 0xC00C
_QR, _TC, _RD = 0x8000, 0x0200, 0x0100
# The few numbers of RFC 1035/6891 the usual path needs, written out: dnspython's rdatatype and
# rcode modules (and the dns package they pull in) cost every agent's start ~3 ms of CPU to import.
_A, _AAAA, _OPT, _IN = 1, 28, 41, 1
_NOERROR, _NXDOMAIN = 0, 3
_FAMILY = {_A: (socket.AF_INET, 4), _AAAA: (socket.AF_INET6, 16)}


class _NXDomain(Exception):
    """The name does not exist."""


class _NoData(Exception):
    """The name exists but has no record of the type asked."""


class _Failed(Exception):
    """This server could not answer; ``problem`` is why (an rcode's name, a timeout, …)."""

    def __init__(self, problem: str) -> None:
        self.problem = problem
        super().__init__(problem)


@value
class _Reply:
    addresses: tuple[str, ...]
    truncated: bool


def _fast_addresses(wire: bytes, offset: int, count: int, rdtype: int) -> tuple[str, ...] | None:
    """The answer section when every record is ``rdtype`` for the question's own name (the
    owner a pointer to it, as servers write it); None for anything else (CNAMEs, …)."""
    family, size = _FAMILY[rdtype]
    step = _RECORD.size + size
    if offset + count * step > len(wire):
        return None
    out = []
    for start in range(offset, offset + count * step, step):
        owner, kind, klass, _, length = _RECORD.unpack_from(wire, start)
        if (owner, kind, klass, length) != (_POINTER_TO_QUESTION, rdtype, _IN, size):
            return None
        out.append(socket.inet_ntop(family, wire[start + _RECORD.size : start + step]))
    return tuple(out)


def _parsed_addresses(wire: bytes) -> tuple[str, ...]:
    """dnspython's reading of the answer, following CNAMEs; _NoData when it ends in none."""
    import dns.exception  # only for unusual answers: dnspython is a quarter of the agent's start
    import dns.message

    try:
        message = dns.message.from_wire(wire, ignore_trailing=True)
        if not isinstance(message, dns.message.QueryMessage):
            raise _Failed("DNS error: not an answer to a query")
        chain = message.resolve_chaining()
    except dns.exception.DNSException as exc:
        raise _Failed(f"DNS error: {exc}") from None
    if chain.answer is None:
        raise _NoData
    return tuple(r.to_text() for r in chain.answer)


def _rcode_name(rcode: int) -> str:
    """How dnspython names a failure's rcode (SERVFAIL, REFUSED, …): a user searches for it."""
    import dns.rcode  # a failure's path only

    return dns.rcode.to_text(dns.rcode.Rcode(rcode))


def _read(wire: bytes, question: bytes, query_id: int, rdtype: int) -> _Reply:
    if len(wire) < _HEADER.size:
        raise _Failed("DNS error: short answer")
    ident, flags, _, count, _, _ = _HEADER.unpack_from(wire)
    if ident != query_id or not flags & _QR:
        raise _Failed("DNS error: answer to another query")
    rcode = flags & 0xF
    if rcode == _NXDOMAIN:
        raise _NXDomain
    if rcode != _NOERROR:
        raise _Failed(_rcode_name(rcode))
    end = _HEADER.size + len(question)
    same_question = wire[_HEADER.size : end].lower() == question.lower()
    addresses = _fast_addresses(wire, end, count, rdtype) if same_question else None
    if addresses is None:
        addresses = _parsed_addresses(wire)
    truncated = bool(flags & _TC)
    if not addresses and not truncated:
        raise _NoData
    return _Reply(addresses, truncated)


def _query_wire(name: str, rdtype: int) -> tuple[bytes, bytes]:
    """The query (id 0, recursion desired, EDNS0 with our UDP payload) and its question section,
    written out: dnspython's message module would cost every agent's start 30 ms to import."""
    labels = [label.encode("ascii") for label in name.rstrip(".").split(".")]
    if not all(0 < len(label) < 64 for label in labels):
        raise _Failed(f"DNS error: not a valid name: {name!r}")
    question = b"".join(bytes([len(x)]) + x for x in labels) + b"\x00"
    question += struct.pack("!HH", rdtype, _IN)
    opt = b"\x00" + struct.pack("!HHIH", _OPT, UDP_PAYLOAD, 0, 0)  # root, no options
    return _HEADER.pack(0, _RD, 1, 0, 0, 1) + question + opt, question


class Resolver:
    def __init__(
        self,
        servers: Sequence[tuple[str, int]],
        *,
        attempt_timeout: float = DEFAULT_TIMING.dns_timeout,
    ) -> None:
        if not servers:
            raise ValueError("no DNS server (no nameserver in /etc/resolv.conf; use --dns-server)")
        self._servers = tuple(servers)
        self._lifetime = attempt_timeout
        #: names whose answer is too big for UDP (a large Service): asked over TCP at once,
        #: instead of a truncated UDP answer followed by the same query over TCP every round
        self._over_tcp: set[str] = set()
        self._queries: dict[tuple[str, int], tuple[bytes, bytes]] = {}
        self._families: tuple[int, int] = (_A, _AAAA)

    def _query(self, name: str, rdtype: int) -> tuple[int, bytes, bytes]:
        """A fresh query id, the query's wire form and its question section (built once)."""
        if (built := self._queries.get((name, rdtype))) is None:
            built = self._queries[(name, rdtype)] = _query_wire(name, rdtype)
        wire, question = built
        # os.urandom, not secrets: secrets imports hmac, which loads OpenSSL's hashes
        query_id = int.from_bytes(os.urandom(2), "big")
        return query_id, struct.pack("!H", query_id) + wire[2:], question

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
                if wire[:2] == query[:2] and len(wire) >= _HEADER.size:
                    return wire

    async def _tcp(self, server: tuple[str, int], query: bytes) -> bytes:
        async with await open_tcp(*server) as stream:  # servers are IP addresses (config)
            await stream.send(struct.pack("!H", len(query)) + query)
            reader = LineReader(stream)
            (length,) = struct.unpack("!H", await reader.receive_exactly(2))
            return await reader.receive_exactly(length)

    async def _ask(self, server: tuple[str, int], name: str, rdtype: int) -> _Reply:
        query_id, query, question = self._query(name, rdtype)
        if name not in self._over_tcp:
            reply = _read(await self._udp(server, query, query_id), question, query_id, rdtype)
            if not reply.truncated:
                return reply
            self._over_tcp.add(name)
        reply = _read(await self._tcp(server, query), question, query_id, rdtype)
        if not reply.addresses:
            raise _Failed("DNS error: a truncated answer without records, even over TCP")
        return reply

    async def _lookup(self, name: str, rdtype: int) -> _Reply:
        """Each server in turn, within one lifetime shared between them."""
        problems: list[str] = []
        deadline = anyio.current_time() + self._lifetime
        for left, server in zip(range(len(self._servers), 0, -1), self._servers, strict=True):
            budget = (deadline - anyio.current_time()) / left
            try:
                with anyio.fail_after(max(budget, 0.0)):
                    return await self._ask(server, name, rdtype)
            except _Failed as exc:
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
        raise _Failed(", ".join(sorted(set(problems))))

    async def addresses(self, name: str) -> Resolution:
        """A or AAAA records, whichever family the cluster publishes (one query per name normally).

        A single-stack cluster publishes one family for every name (an IPv6-only one AAAA
        alone, a dual-stack one its primary family by default): the family that last answered
        is asked first, the other only when the name exists without it.
        """
        first, then = self._families
        try:
            try:
                reply = await self._lookup(name, first)
            except _NoData:
                reply = await self._lookup(name, then)
                self._families = (then, first)
        except _NXDomain:
            return Resolution(failure=Failure("NXDOMAIN", Cause.NXDOMAIN))
        except _NoData:
            return Resolution(failure=Failure("no address record", Cause.NO_ADDRESS))
        except _Failed as exc:
            return Resolution(failure=Failure(exc.problem, Cause.DNS_FAILED))
        return Resolution(reply.addresses, truncated=reply.truncated)
