"""A threaded DNS server on 127.0.0.1, UDP and TCP on one free port: the part every loopback
stub shares. Subclasses say what to answer (``_answer``); a delay sends the answer late."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from types import TracebackType
from typing import Self

__all__ = ["LoopbackDNSServer"]


class LoopbackDNSServer:
    def __init__(self) -> None:
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.udp, self.tcp = self._bind()
        self.address, self.port = "127.0.0.1", int(self.udp.getsockname()[1])

    @property
    def server(self) -> str:
        """What ``--dns-server`` takes."""
        return f"{self.address}:{self.port}"

    def _answer(self, data: bytes, transport: str) -> tuple[bytes | None, float]:
        """(wire answer or None to stay silent, seconds to wait before sending it)."""
        raise NotImplementedError

    @staticmethod
    def _bind() -> tuple[socket.socket, socket.socket]:
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

    def __enter__(self) -> Self:
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
