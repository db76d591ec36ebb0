"""A loopback DNS server for the cases that need no cluster: fixed A records over UDP and TCP.

It behaves like CoreDNS where the benchmark depends on it: an answer too large for the transport
is cut to what fits and flagged TC (UDP: 512 bytes, or the client's EDNS payload; TCP: the 65,535
bytes a DNS message can ever have), so a Service name with thousands of addresses costs what it
would cost in a cluster. Every query's arrival is noted with ``time.monotonic()`` (one clock for
every process on the machine), so the bench can set them against its own clock.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import dns.exception
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset

from tests.support.dnsserver import LoopbackDNSServer

__all__ = ["BenchDNS", "Query"]

TCP_MAX = 65535


@dataclass(frozen=True)
class Query:
    at: float  # time.monotonic() on arrival
    name: str
    transport: str  # "udp" or "tcp"
    truncated: bool


def _norm(name: str) -> str:
    return name.lower().rstrip(".") + "."


class BenchDNS(LoopbackDNSServer):
    """``with BenchDNS({"a-0.svc.ns.svc.cluster.local.": ["127.0.0.1"]}) as d:`` on d.server."""

    def __init__(self, zone: dict[str, list[str]] | None = None) -> None:
        self.zone = {_norm(k): list(v) for k, v in (zone or {}).items()}
        self.log: list[Query] = []
        self._lock = threading.Lock()
        super().__init__()

    def _answer(self, data: bytes, transport: str) -> tuple[bytes | None, float]:
        arrived = time.monotonic()
        try:
            query = dns.message.from_wire(data)
        except Exception:  # a malformed query gets nothing, as from many servers
            return None, 0.0
        if not query.question:
            return None, 0.0
        question = query.question[0]
        name = _norm(question.name.to_text())
        reply = dns.message.make_response(query)
        addresses = self.zone.get(name)
        if addresses is None:
            reply.set_rcode(dns.rcode.NXDOMAIN)
        elif question.rdtype == dns.rdatatype.A and addresses:
            reply.answer.append(dns.rrset.from_text_list(name, 5, "IN", "A", addresses))
        if transport == "tcp":
            limit = TCP_MAX
        else:
            limit = max(512, query.payload) if query.edns >= 0 else 512
        wire, truncated = self._fit(reply, limit)
        with self._lock:
            self.log.append(Query(arrived, name, transport, truncated))
        return wire, 0.0

    @staticmethod
    def _fit(reply: dns.message.Message, limit: int) -> tuple[bytes, bool]:
        """The reply's wire form within ``limit`` bytes: as many records as fit, TC if cut."""
        try:
            return reply.to_wire(max_size=limit), False
        except dns.exception.TooBig:
            pass
        [rrset] = reply.answer
        records = list(rrset)
        reply.flags |= dns.flags.TC
        # An A record after the first costs 16 bytes with name compression: start from there.
        keep = max(0, (limit - 64) // 16)
        while keep > 0:
            reply.answer = [dns.rrset.from_rdata_list(rrset.name, rrset.ttl, records[:keep])]
            try:
                return reply.to_wire(max_size=limit), True
            except dns.exception.TooBig:
                keep -= 1
        reply.answer = []
        return reply.to_wire(max_size=limit), True
