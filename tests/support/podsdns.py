"""One fault-injecting DNS server that tells its clients apart: a port pair (UDP and TCP) per pod.

Agents on loopback all send their queries from 127.0.0.1 and a fresh port, so a server cannot
say which pod asked. Here pod ``i`` is given ``dns.server_for(i)``, a port of its own, and
every query is counted against the pod whose port it came in on (``dns.per_pod``). One thread
serves every UDP port, as one cluster DNS instance serves every pod: a burst from many pods
queues behind itself, so a server that falls behind does so for everyone. Zone and faults are
:class:`~tests.support.faultdns.FaultDNS`'s.
"""

from __future__ import annotations

import contextlib
import functools
import selectors
import socket
import threading
import time
from collections import Counter
from types import TracebackType
from typing import Self

from tests.support.faultdns import FaultDNS, Mode

__all__ = ["CutServiceDNS", "PodsDNS"]


class PodsDNS(FaultDNS):
    def __init__(self, pods: int, *, ttl: int = 0) -> None:
        super().__init__(ttl=ttl)
        pairs = [self._bind() for _ in range(pods)]
        self._pod_udp = [udp for udp, _ in pairs]
        self._pod_tcp = [tcp for _, tcp in pairs]
        self._pod_of = {s.getsockname()[1]: i for i, s in enumerate(self._pod_udp)}
        #: queries that reached the server, per pod (what each pod asked, whatever it got)
        self.per_pod: Counter[int] = Counter()
        #: the same per pod and name, and when each came (``log``'s entry, by pod)
        self.per_name: Counter[tuple[int, str]] = Counter()
        self.pod_of_entry: list[int] = []

    def server_for(self, pod: int) -> str:
        """What ``--dns-server`` takes for pod ``pod``."""
        return f"{self.address}:{self._pod_udp[pod].getsockname()[1]}"

    def __enter__(self) -> Self:
        super().__enter__()
        for target in (self._serve_pod_udp, self._serve_pod_tcp):
            thread = threading.Thread(target=target, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        super().__exit__(t, e, tb)
        for s in [*self._pod_udp, *self._pod_tcp]:
            s.close()

    def _counted(self, data: bytes, transport: str, pod: int) -> tuple[bytes | None, float]:
        with self._lock:  # reentrant: the answer's log entry is this query's
            self.per_pod[pod] += 1
            answered = self._answer(data, transport)
            if len(self.log) > len(self.pod_of_entry):
                self.per_name[(pod, self.log[-1].name)] += 1
                self.pod_of_entry.append(pod)
            return answered

    def _serve_pod_udp(self) -> None:
        with selectors.DefaultSelector() as sel:
            for s in self._pod_udp:
                s.setblocking(False)
                sel.register(s, selectors.EVENT_READ)
            while not self._stop.is_set():
                for key, _ in sel.select(timeout=0.1):
                    sock: socket.socket = key.fileobj  # type: ignore[assignment]
                    with contextlib.suppress(OSError):
                        data, peer = sock.recvfrom(65535)
                        pod = self._pod_of[sock.getsockname()[1]]
                        wire, delay = self._counted(data, "udp", pod)
                        if wire is not None:
                            send = functools.partial(self._send_on, sock, wire, peer)
                            if delay:
                                threading.Timer(delay, send).start()
                            else:
                                send()

    @staticmethod
    def _send_on(sock: socket.socket, wire: bytes, peer: tuple[str, int]) -> None:
        with contextlib.suppress(OSError):
            sock.sendto(wire, peer)

    def _serve_pod_tcp(self) -> None:
        with selectors.DefaultSelector() as sel:
            for pod, s in enumerate(self._pod_tcp):
                s.setblocking(False)
                sel.register(s, selectors.EVENT_READ, pod)
            while not self._stop.is_set():
                for key, _ in sel.select(timeout=0.1):
                    listener: socket.socket = key.fileobj  # type: ignore[assignment]
                    with contextlib.suppress(OSError):
                        conn, _ = listener.accept()
                        conn.setblocking(True)
                        args = (conn, key.data)
                        serve = self._serve_pod_conn
                        threading.Thread(target=serve, args=args, daemon=True).start()

    def _serve_pod_conn(self, conn: socket.socket, pod: int) -> None:
        conn.settimeout(10)
        with conn, contextlib.suppress(OSError):
            while not self._stop.is_set():
                head = conn.recv(2, socket.MSG_WAITALL)
                if len(head) < 2:
                    return
                size = int.from_bytes(head, "big")
                wire, delay = self._counted(conn.recv(size, socket.MSG_WAITALL), "tcp", pod)
                if wire is None:
                    continue
                if delay:
                    self._stop.wait(delay)
                conn.sendall(len(wire).to_bytes(2, "big") + wire)


class CutServiceDNS(PodsDNS):
    """The Service ``service``'s answer cut as a Service of more pods than one DNS message holds
    is cut: over UDP TC and no records, over TCP only ``listed``, TC set. Every other name is
    answered from the zone."""

    def __init__(
        self, pods: int, service: str, listed: tuple[str, ...], *, service_time: float = 0.0
    ) -> None:
        """``service_time``: seconds of the server's one CPU each answer takes (its work,
        as a CoreDNS instance's is CPU-bound): more queries a second than it can answer queue
        up, and the late ones time out at the client, as from a server that falls behind."""
        super().__init__(pods)
        self.service, self.listed = service, listed
        self._service_time = service_time
        self._cpu = threading.Lock()

    def _answer(self, data: bytes, transport: str) -> tuple[bytes | None, float]:
        if self._service_time:
            with self._cpu:
                time.sleep(self._service_time)
        fault: Mode = "truncate" if transport == "udp" else "cut"
        with self._lock:  # reentrant: the fault holds for exactly this answer
            self.fault(fault, self.service, addresses=self.listed)
            return super()._answer(data, transport)
