"""DNS on the wire, for both drivers: the query written out, the usual answer read straight off
it (dnspython's parser for anything else), and which family and transport to ask next.

No I/O here: ``agent.io.resolver`` (anyio) and ``agent.io.sync.resolver`` (selectors) send the
query and wait for the answer, each within its deadline; what they decide is written once here:
which servers (:func:`servers_of`), each in turn within one lifetime (:func:`in_turn`), UDP
then TCP and how an answer is read (:meth:`Queries.ask`), which datagram is ours (:func:`ours`).
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Awaitable, Callable, Sequence

from agent.config.model import Config
from agent.core.causes import Cause, Failure
from agent.core.inputs import Resolution
from agent.errors import ConfigError
from agent.values import value

__all__ = [
    "AAAA",
    "HEADER",
    "NO_SERVER",
    "A",
    "Failed",
    "NXDomain",
    "NoData",
    "Queries",
    "Reply",
    "in_turn",
    "marked_late",
    "ours",
    "read",
    "resolution_of",
    "servers_of",
    "share",
]

#: the EDNS payload size of DNS Flag Day 2020: about 70 addresses fit a UDP answer
UDP_PAYLOAD = 1232
HEADER = struct.Struct("!HHHHHH")
_RECORD = struct.Struct("!HHHIH")  # owner pointer, type, class, TTL, rdata length
_POINTER_TO_QUESTION = 0xC00C
_QR, _TC, _RD = 0x8000, 0x0200, 0x0100
# The few numbers of RFC 1035/6891 the usual path needs, written out: dnspython's rdatatype and
# rcode modules (and the dns package they pull in) cost every agent's start ~3 ms of CPU to import.
A, AAAA, _OPT, _IN = 1, 28, 41, 1
_NOERROR, _NXDOMAIN = 0, 3
_FAMILY = {A: (socket.AF_INET, 4), AAAA: (socket.AF_INET6, 16)}


NO_SERVER = "no DNS server (no nameserver in /etc/resolv.conf; use --dns-server)"

#: a DNS server: an IP address (config) and a port
Server = tuple[str, int]


def servers_of(config: Config) -> tuple[Server, ...]:
    """The servers every lookup asks: ``--dns-server``, else resolv.conf's nameservers on
    port 53. ConfigError (exit 2) when there is none."""
    servers = config.dns_servers or tuple((s, 53) for s in config.resolv.nameservers)
    if not servers:
        raise ConfigError([f"--dns-server / PEER_AGENT_DNS_SERVER: {NO_SERVER}"])
    return servers


class NXDomain(Exception):
    """The name does not exist."""


class NoData(Exception):
    """The name exists but has no record of the type asked."""


class Failed(Exception):
    """This server could not answer; ``problem`` is why (an rcode's name, a timeout, …)."""

    def __init__(self, problem: str) -> None:
        self.problem = problem
        super().__init__(problem)


@value
class Reply:
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
            raise Failed("DNS error: not an answer to a query")
        chain = message.resolve_chaining()
    except dns.exception.DNSException as exc:
        raise Failed(f"DNS error: {exc}") from None
    if chain.answer is None:
        raise NoData
    return tuple(r.to_text() for r in chain.answer)


def _rcode_name(rcode: int) -> str:
    """How dnspython names a failure's rcode (SERVFAIL, REFUSED, …): a user searches for it."""
    import dns.rcode  # a failure's path only

    return dns.rcode.to_text(dns.rcode.Rcode(rcode))


def read(wire: bytes, question: bytes, query_id: int, rdtype: int) -> Reply:
    if len(wire) < HEADER.size:
        raise Failed("DNS error: short answer")
    ident, flags, _, count, _, _ = HEADER.unpack_from(wire)
    if ident != query_id or not flags & _QR:
        raise Failed("DNS error: answer to another query")
    rcode = flags & 0xF
    if rcode == _NXDOMAIN:
        raise NXDomain
    if rcode != _NOERROR:
        raise Failed(_rcode_name(rcode))
    end = HEADER.size + len(question)
    same_question = wire[HEADER.size : end].lower() == question.lower()
    addresses = _fast_addresses(wire, end, count, rdtype) if same_question else None
    if addresses is None:
        addresses = _parsed_addresses(wire)
    truncated = bool(flags & _TC)
    if not addresses and not truncated:
        raise NoData
    return Reply(addresses, truncated)


def _query_wire(name: str, rdtype: int) -> tuple[bytes, bytes]:
    """The query (id 0, recursion desired, EDNS0 with our UDP payload) and its question section,
    written out: dnspython's message module would cost every agent's start 30 ms to import."""
    labels = [label.encode("ascii") for label in name.rstrip(".").split(".")]
    if not all(0 < len(label) < 64 for label in labels):
        raise Failed(f"DNS error: not a valid name: {name!r}")
    question = b"".join(bytes([len(x)]) + x for x in labels) + b"\x00"
    question += struct.pack("!HH", rdtype, _IN)
    opt = b"\x00" + struct.pack("!HHIH", _OPT, UDP_PAYLOAD, 0, 0)  # root, no options
    return HEADER.pack(0, _RD, 1, 0, 0, 1) + question + opt, question


class Queries:
    """Each name's query, built once, and what to ask next: the family that last answered
    first, and over TCP at once a name whose answer was too big for UDP."""

    def __init__(self) -> None:
        #: names whose answer is too big for UDP (a large Service): asked over TCP at once,
        #: instead of a truncated UDP answer followed by the same query over TCP every round
        self.over_tcp: set[str] = set()
        self._built: dict[tuple[str, int], tuple[bytes, bytes]] = {}
        self.families: tuple[int, int] = (A, AAAA)

    def query(self, name: str, rdtype: int) -> tuple[int, bytes, bytes]:
        """A fresh query id, the query's wire form and its question section (built once)."""
        if (built := self._built.get((name, rdtype))) is None:
            built = self._built[(name, rdtype)] = _query_wire(name, rdtype)
        wire, question = built
        # os.urandom, not secrets: secrets imports hmac, which loads OpenSSL's hashes
        query_id = int.from_bytes(os.urandom(2), "big")
        return query_id, struct.pack("!H", query_id) + wire[2:], question

    async def ask(
        self,
        name: str,
        rdtype: int,
        udp: Callable[[bytes], Awaitable[bytes]],
        tcp: Callable[[bytes], Awaitable[bytes]],
    ) -> Reply:
        """One server's answer, by the driver's ``udp`` and ``tcp`` exchanges of a query's wire
        form: over UDP first, over TCP when it came truncated (and at once from then on)."""
        query_id, query, question = self.query(name, rdtype)
        if name not in self.over_tcp:
            reply = read(await udp(query), question, query_id, rdtype)
            if not reply.truncated:
                return reply
            self.over_tcp.add(name)
        reply = read(await tcp(query), question, query_id, rdtype)
        if not reply.addresses:
            raise Failed("DNS error: a truncated answer without records, even over TCP")
        return reply

    async def addresses(
        self, name: str, lookup: Callable[[str, int], Awaitable[Reply]]
    ) -> Resolution:
        """A or AAAA records, whichever family the cluster publishes (one query per name
        normally), each asked by the driver's ``lookup``. A single-stack cluster publishes one
        family for every name (an IPv6-only one AAAA alone, a dual-stack one its primary
        family by default): the family that last answered is asked first, the other only when
        the name exists without it."""
        first, then = self.families
        try:
            try:
                reply = await lookup(name, first)
            except NoData:
                reply = await lookup(name, then)
                self.families = (then, first)
        except (NXDomain, NoData, Failed) as exc:
            return resolution_of(exc)
        return resolution_of(reply)


def ours(wire: bytes, query: bytes) -> bool:
    """Whether a datagram answers ``query`` (not a late answer to an earlier one)."""
    return wire[:2] == query[:2] and len(wire) >= HEADER.size


async def in_turn(
    servers: Sequence[Server],
    times: tuple[float, float],
    clock: Callable[[], float],
    ask: Callable[[Server, float], Awaitable[Reply]],
) -> Reply:
    """Each server in turn (``share`` of ``times``: the timeout, the answer wait): ``ask``
    gets the server and its share (seconds), and raises Failed, TimeoutError or OSError for
    the next."""
    problems: list[str] = []
    start = clock()
    for left, server in zip(range(len(servers), 0, -1), servers, strict=True):
        try:
            return await ask(server, share(start, clock(), left, *times))
        except Failed as exc:
            problems.append(exc.problem)
        except TimeoutError:
            problems.append("DNS timeout")
        except OSError as exc:
            problems.append(f"DNS error: {exc.strerror or exc}")
    raise Failed(", ".join(sorted(set(problems))))


def share(start: float, now: float, left: int, timeout: float, wait: float) -> float:
    """How long the next server of a lookup that began at ``start`` is given, ``left``
    servers to go: the servers but the last share ``timeout`` (a dead first server costs
    little); the last waits until ``wait`` (``Timing.dns_answer_wait``) from the start, as a
    server that falls behind answers late, and asked again, answers that query as late."""
    if left == 1:
        return max(start + wait - now, 0.0)
    return max((start + timeout - now) / left, 0.0)


def marked_late(resolution: Resolution, took: float, timeout: float) -> Resolution:
    """``resolution`` marked late when the server answered (not a timeout, nor SERVFAIL:
    those are failures already) after ``timeout`` (``Timing.dns_timeout``)."""
    failed = resolution.failure is not None and resolution.failure.cause is Cause.DNS_FAILED
    if took <= timeout or failed:
        return resolution
    return Resolution(resolution.addresses, resolution.truncated, resolution.failure, late=True)


def resolution_of(reply: Reply | Exception) -> Resolution:
    """What the core hears of a lookup that ended with ``reply`` or with one of this module's
    failures."""
    if isinstance(reply, NXDomain):
        return Resolution(failure=Failure("NXDOMAIN", Cause.NXDOMAIN))
    if isinstance(reply, NoData):
        return Resolution(failure=Failure("no address record", Cause.NO_ADDRESS))
    if isinstance(reply, Failed):
        return Resolution(failure=Failure(reply.problem, Cause.DNS_FAILED))
    assert isinstance(reply, Reply), reply
    return Resolution(reply.addresses, truncated=reply.truncated)
