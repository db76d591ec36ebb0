"""A loopback DNS server for the cases that need no cluster: fixed A records over UDP and TCP.

It behaves like CoreDNS where the benchmark depends on it: an answer too large for the transport
is cut to what fits and flagged TC (UDP: 512 bytes, or the client's EDNS payload; TCP: the 65,535
bytes a DNS message can ever have), so a Service name with thousands of addresses costs what it
would cost in a cluster. Every query's arrival is noted with ``time.monotonic()`` (one clock for
every process on the machine), so cold start is measured against the launching process's clock.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from dataclasses import dataclass
from types import TracebackType

import dns.exception
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset

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


class BenchDNS:
    """``with BenchDNS({"a-0.svc.ns.svc.cluster.local.": ["127.0.0.1"]}) as d:`` on d.server."""

    def __init__(self, zone: dict[str, list[str]] | None = None) -> None:
        self.zone = {_norm(k): list(v) for k, v in (zone or {}).items()}
        self.log: list[Query] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.udp, self.tcp = self._bind()
        self.port = int(self.udp.getsockname()[1])

    @property
    def server(self) -> str:
        return f"127.0.0.1:{self.port}"

    def first_query_after(self, t0: float) -> float | None:
        with self._lock:
            times = [q.at for q in self.log if q.at >= t0]
        return min(times) if times else None

    @staticmethod
    def _bind() -> tuple[socket.socket, socket.socket]:
        for _ in range(50):
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            udp.bind(("127.0.0.1", 0))
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                tcp.bind(("127.0.0.1", udp.getsockname()[1]))
            except OSError:  # that port is taken for TCP: try another pair
                udp.close()
                tcp.close()
                continue
            tcp.listen(64)
            for s in (udp, tcp):
                s.settimeout(0.1)
            return udp, tcp
        raise OSError("no free port for both UDP and TCP")

    def __enter__(self) -> BenchDNS:
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

    def _answer(self, data: bytes, transport: str) -> bytes | None:
        arrived = time.monotonic()
        try:
            query = dns.message.from_wire(data)
        except Exception:  # a malformed query gets nothing, as from many servers
            return None
        if not query.question:
            return None
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
        return wire

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

    def _serve_udp(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self.udp.recvfrom(65535)
            except (TimeoutError, OSError):
                continue
            wire = self._answer(data, "udp")
            if wire is not None:
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
                wire = self._answer(conn.recv(size, socket.MSG_WAITALL), "tcp")
                if wire is not None:
                    conn.sendall(struct.pack("!H", len(wire)) + wire)
