"""A DNS server on loopback that fails on demand: the faults a real cluster DNS produces at random.

``with FaultDNS({"a-0.svc.ns.svc.cluster.local": ["127.0.0.1"]}) as dns:`` serves that zone on
127.0.0.1, UDP and TCP on one free port (``dns.server`` is ``"127.0.0.1:PORT"``), until the end of
the block. Names missing from the zone are NXDOMAIN; a name without a record of the asked type is
NOERROR with an empty answer. Faults can be set and cleared while clients run, for one name or for
every name (``name=None``; a name's own fault wins)::

    dns.fault("servfail", name, count=3)      # the first 3 queries: SERVFAIL, then normal
    dns.fault("refused")                      # every name, until cleared: REFUSED
    dns.fault("silence", name)                # no answer at all (the client times out)
    dns.fault("truncate", name)               # UDP answers carry TC and no records; TCP is whole
    dns.fault("cut", name, addresses=[a])     # TC even over TCP, listing only [a] (a Service
                                              # of more pods than 64 KiB holds, as CoreDNS does)
    dns.fault("delay", name, delay=0.5)       # right answer, late
    dns.fault("stale", name, addresses=[old], count=5)  # a replaced pod: old address, then new
    dns.fault("flap", name, period=2)         # 2 answers present, 2 NXDOMAIN, 2 present, ...
    dns.set(name, wrong_pod, right_pod)       # two addresses for one hostname
    dns.clear(name)

Every query is counted per name, type and transport (``dns.queries(name, "A", "tcp")``) and logged
with what it got (``dns.log``); ``dns.wait_for(predicate)`` blocks until a query makes it true.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

import dns.exception
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset

from tests.support.dnsserver import LoopbackDNSServer

__all__ = ["FaultDNS", "Mode", "Query"]

Mode = Literal["servfail", "refused", "silence", "truncate", "cut", "delay", "stale", "flap"]
MODES: tuple[Mode, ...] = (
    "servfail",
    "refused",
    "silence",
    "truncate",
    "cut",
    "delay",
    "stale",
    "flap",
)


@dataclass
class _Fault:
    mode: Mode
    count: int | None  # queries still affected; None: until cleared
    delay: float
    addresses: tuple[str, ...]
    period: int
    seen: int = 0


@dataclass(frozen=True)
class Query:
    at: float  # time.monotonic() on arrival
    name: str
    rdtype: str
    transport: str  # "udp" or "tcp"
    outcome: str  # "NOERROR 10.0.0.1,…", "NXDOMAIN", "SERVFAIL", "REFUSED", "dropped", "TC"


def _norm(name: str) -> str:
    return name.lower().rstrip(".") + "."


class FaultDNS(LoopbackDNSServer):
    def __init__(self, zone: Mapping[str, Iterable[str]] | None = None, *, ttl: int = 0) -> None:
        self.ttl = ttl
        self._zone = {_norm(k): tuple(v) for k, v in (zone or {}).items()}
        self._faults: dict[str | None, _Fault] = {}
        self.log: list[Query] = []
        self.counts: Counter[tuple[str, str, str]] = Counter()
        self._lock = threading.Condition()
        super().__init__()

    # --- the zone and the faults, changed at run time ---------------------------------------------
    def set(self, name: str, *addresses: str) -> None:
        with self._lock:
            self._zone[_norm(name)] = addresses

    def remove(self, name: str) -> None:
        with self._lock:
            self._zone.pop(_norm(name), None)

    def fault(
        self,
        mode: Mode,
        name: str | None = None,
        *,
        count: int | None = None,
        delay: float = 0.0,
        addresses: Iterable[str] = (),
        period: int = 1,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown fault {mode!r}")
        key = None if name is None else _norm(name)
        with self._lock:
            self._faults[key] = _Fault(mode, count, delay, tuple(addresses), max(1, period))

    def clear(self, name: str | None = None) -> None:
        """Remove the fault of ``name`` (or the global one)."""
        with self._lock:
            self._faults.pop(None if name is None else _norm(name), None)

    # --- what was asked ---------------------------------------------------------------------------
    def queries(
        self, name: str | None = None, rdtype: str | None = None, transport: str | None = None
    ) -> int:
        want = None if name is None else _norm(name)
        with self._lock:
            return sum(
                n
                for (qname, qtype, qtransport), n in self.counts.items()
                if want in (None, qname)
                and rdtype in (None, qtype)
                and transport in (None, qtransport)
            )

    def outcomes(self, name: str) -> list[str]:
        with self._lock:
            return [q.outcome for q in self.log if q.name == _norm(name)]

    def wait_for(self, predicate: Callable[[FaultDNS], bool], timeout: float = 10.0) -> bool:
        """Block until ``predicate(self)`` holds (checked after each query) or ``timeout``."""
        with self._lock:
            return self._lock.wait_for(lambda: predicate(self), timeout)

    # --- serving ----------------------------------------------------------------------------------
    def _answer(self, data: bytes, transport: str) -> tuple[bytes | None, float]:
        """The reply's wire form (None: drop it) and how long to hold it back."""
        try:
            query = dns.message.from_wire(data)
        except Exception:  # a malformed query gets nothing, as from many servers
            return None, 0.0
        if not query.question:
            return None, 0.0
        question = query.question[0]
        name, rdtype = _norm(question.name.to_text()), dns.rdatatype.to_text(question.rdtype)
        reply = dns.message.make_response(query)
        delay, wire = 0.0, True
        with self._lock:
            fault = self._faults.get(name) or self._faults.get(None)
            key = name if name in self._faults else None
            if fault is not None and fault.mode == "truncate" and transport == "tcp":
                fault = None  # TCP carries the whole answer
            addresses = self._zone.get(name)
            outcome = ""
            if fault is not None:
                fault.seen += 1
                if fault.count is not None:
                    fault.count -= 1
                    if fault.count <= 0:
                        del self._faults[key]
                mode = fault.mode
                if mode in ("servfail", "refused"):
                    code = dns.rcode.SERVFAIL if mode == "servfail" else dns.rcode.REFUSED
                    reply.set_rcode(code)
                    outcome = dns.rcode.to_text(code)
                elif mode == "silence":
                    wire, outcome = False, "dropped"
                elif mode == "truncate":
                    reply.flags |= dns.flags.TC
                    outcome = "TC"
                elif mode == "delay":
                    delay = fault.delay
                elif mode in ("stale", "cut"):
                    addresses = fault.addresses
                    if mode == "cut":
                        reply.flags |= dns.flags.TC
                elif mode == "flap" and (fault.seen - 1) // fault.period % 2 == 1:
                    addresses = None
            if not outcome:
                outcome = self._fill(reply, name, question.rdtype, addresses)
            self.counts[(name, rdtype, transport)] += 1
            self.log.append(Query(time.monotonic(), name, rdtype, transport, outcome))
            self._lock.notify_all()
        return (self._wire(reply, query, transport) if wire else None), delay

    @staticmethod
    def _wire(reply: dns.message.Message, query: dns.message.Message, transport: str) -> bytes:
        """As unbound does: an answer too big for the client's UDP payload goes out empty with TC
        (the client asks again over TCP); TCP carries up to 64 KiB."""
        udp_limit = max(512, query.payload) if query.edns >= 0 else 512
        try:
            return reply.to_wire(max_size=65535 if transport == "tcp" else udp_limit)
        except dns.exception.TooBig:
            reply.answer = []
            reply.flags |= dns.flags.TC
            return reply.to_wire()

    def _fill(
        self,
        reply: dns.message.Message,
        name: str,
        rdtype: dns.rdatatype.RdataType,
        addresses: tuple[str, ...] | None,
    ) -> str:
        if addresses is None:
            reply.set_rcode(dns.rcode.NXDOMAIN)
            return "NXDOMAIN"
        family = 4 if rdtype == dns.rdatatype.A else 6 if rdtype == dns.rdatatype.AAAA else 0
        found = [a for a in addresses if ipaddress.ip_address(a).version == family]
        if found:
            kind = dns.rdatatype.to_text(rdtype)
            reply.answer.append(dns.rrset.from_text_list(name, self.ttl, "IN", kind, found))
        return "NOERROR " + ",".join(found)
