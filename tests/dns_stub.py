"""A loopback DNS server that answers NXDOMAIN to everything and notes when each query came.

Enough to time the agent's cold start (process start to its first DNS query) and to let
`doctor` finish quickly. Every query is answered, so nothing waits on a timeout.
"""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType

import dns.message
import dns.rcode


class NxdomainServer:
    """``with NxdomainServer() as s:`` serves on 127.0.0.1, UDP ``s.port``, until the block ends."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port: int = self.sock.getsockname()[1]
        #: (time.time() on arrival, query name), in arrival order
        self.queries: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> NxdomainServer:
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
            self.queries.append((arrived, str(query.question[0].name) if query.question else ""))
            reply = dns.message.make_response(query)
            reply.set_rcode(dns.rcode.NXDOMAIN)
            self.sock.sendto(reply.to_wire(), addr)
