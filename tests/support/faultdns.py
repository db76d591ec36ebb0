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
    dns.fault("delay", name, delay=0.5)       # right answer, late
    dns.fault("stale", name, addresses=[old], count=5)  # a replaced pod: old address, then new
    dns.fault("flap", name, period=2)         # 2 answers present, 2 NXDOMAIN, 2 present, ...
    dns.set(name, wrong_pod, right_pod)       # two addresses for one hostname
    dns.clear(name)

Every query is counted per name, type and transport (``dns.queries(name, "A", "tcp")``) and logged
with what it got (``dns.log``); ``dns.wait_for(predicate)`` blocks until a query makes it true.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Literal

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset

__all__ = ["FaultDNS", "Mode", "Query"]

Mode = Literal["servfail", "refused", "silence", "truncate", "delay", "stale", "flap"]
MODES: tuple[Mode, ...] = ("servfail", "refused", "silence", "truncate", "delay", "stale", "flap")


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


class FaultDNS:
    def __init__(self, zone: Mapping[str, Iterable[str]] | None = None, *, ttl: int = 0) -> None:
        self.ttl = ttl
        self._zone = {_norm(k): tuple(v) for k, v in (zone or {}).items()}
        self._faults: dict[str | None, _Fault] = {}
        self.log: list[Query] = []
        self.counts: Counter[tuple[str, str, str]] = Counter()
        self._lock = threading.Condition()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.udp, self.tcp = self._bind()
        self.address, self.port = "127.0.0.1", int(self.udp.getsockname()[1])

    @property
    def server(self) -> str:
        """What ``--dns-server`` takes."""
        return f"{self.address}:{self.port}"

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
    def _bind(self) -> tuple[socket.socket, socket.socket]:
        for _ in range(50):
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            udp.bind(("127.0.0.1", 0))
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                tcp.bind(("127.0.0.1", udp.getsockname()[1]))
            except OSError:  # that port is taken for TCP: try another
                udp.close()
                tcp.close()
                continue
            tcp.listen(64)
            for s in (udp, tcp):
                s.settimeout(0.1)
            return udp, tcp
        raise OSError("no free port for both UDP and TCP")

    def __enter__(self) -> FaultDNS:
        for target in (self._serve_udp, self._serve_tcp):
            thread = threading.Thread(target=target, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        self.udp.close()
        self.tcp.close()

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
                elif mode == "stale":
                    addresses = fault.addresses
                elif mode == "flap" and (fault.seen - 1) // fault.period % 2 == 1:
                    addresses = None
            if not outcome:
                outcome = self._fill(reply, name, question.rdtype, addresses)
            self.counts[(name, rdtype, transport)] += 1
            self.log.append(Query(time.monotonic(), name, rdtype, transport, outcome))
            self._lock.notify_all()
        return (reply.to_wire() if wire else None), delay

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

    def _serve_udp(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self.udp.recvfrom(65535)
            except (TimeoutError, OSError):
                continue
            wire, delay = self._answer(data, "udp")
            if wire is None:
                continue
            if delay:
                threading.Timer(delay, self._send_udp, (wire, peer)).start()
            else:
                self._send_udp(wire, peer)

    def _send_udp(self, wire: bytes, peer: tuple[str, int]) -> None:
        with contextlib.suppress(OSError):
            self.udp.sendto(wire, peer)

    def _serve_tcp(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.tcp.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=self._serve_tcp_conn, args=(conn,), daemon=True).start()

    def _serve_tcp_conn(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        with conn, contextlib.suppress(OSError):
            while not self._stop.is_set():
                head = conn.recv(2, socket.MSG_WAITALL)
                if len(head) < 2:
                    return
                (size,) = struct.unpack("!H", head)
                wire, delay = self._answer(conn.recv(size, socket.MSG_WAITALL), "tcp")
                if wire is None:
                    continue
                if delay:
                    self._stop.wait(delay)
                conn.sendall(struct.pack("!H", len(wire)) + wire)
