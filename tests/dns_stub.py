"""A loopback DNS server with fixed A records (NXDOMAIN for anything else) that notes when each
query came.

Enough to time the agent's cold start (process start to its first DNS query), to let `doctor`
finish quickly, and to stand in for cluster DNS when a few containers play a Job's pods. Every
query is answered, so nothing waits on a timeout.
"""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset


class StubDnsServer:
    """``with StubDnsServer(records) as s:`` serves on 127.0.0.1, UDP ``s.port``, until the end.

    ``records`` maps absolute names (trailing dot) to IPv4 addresses (one, or a list).
    """

    def __init__(self, records: dict[str, str | list[str]] | None = None) -> None:
        self.records = dict(records or {})
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port: int = self.sock.getsockname()[1]
        #: (time.time() on arrival, query name), in arrival order
        self.queries: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> StubDnsServer:
        self._thread.start()
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()

    def first_query_after(self, t0: float) -> float | None:
        times = [t for t, _ in self.queries if t >= t0]
        return min(times) if times else None

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, addr = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            arrived = time.time()
            try:
                query = dns.message.from_wire(data)
            except Exception:  # a malformed query is the client's problem: note and drop it
                self.queries.append((arrived, "<malformed>"))
                continue
            if not query.question:
                continue
            question = query.question[0]
            name = str(question.name)
            self.queries.append((arrived, name))
            reply = dns.message.make_response(query)
            address = self.records.get(name.lower())
            if address is None:
                reply.set_rcode(dns.rcode.NXDOMAIN)
            elif question.rdtype == dns.rdatatype.A:
                addresses = [address] if isinstance(address, str) else address
                reply.answer.append(dns.rrset.from_text_list(name, 5, "IN", "A", addresses))
            # else: the name exists without that type: NOERROR, empty answer
            self.sock.sendto(reply.to_wire(), addr)
