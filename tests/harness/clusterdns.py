"""Cluster DNS: a real unbound server that answers for the cluster zone as CoreDNS would.

Records are changed at run time over unbound's control socket, so tests see the same
publish / withdraw transitions a pod sees when EndpointSlices change. The zone is `static`:
a name without data is NXDOMAIN (with the zone's SOA, as CoreDNS answers), and everything
outside the zone is REFUSED, so no query ever leaves the box.

The backend never caches (`cache-max-ttl: 0`, `cache-max-negative-ttl: 0`). To model CoreDNS'
`cache`/`ttl` (a not-yet-published name stays NXDOMAIN for up to `ttl` seconds, a replaced pod's
old address lingers), pass `negative_ttl` > 0: a second unbound then runs in front as a caching
forwarder, and `address`/`port` are the front's.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

import dns.message
import dns.query
import dns.rcode

from tests.harness import leftovers
from tests.harness.nsutil import family_of, free_port, netns_socket

UNBOUND = "unbound"
START_TIMEOUT = 10.0
_SOCK_PATH_MAX = 100  # AF_UNIX paths are limited to 107 bytes


class DNSError(RuntimeError):
    """unbound refused a control command or did not start."""


def _control(sock_path: Path, command: str, lines: Sequence[str] | None = None) -> str:
    """One unbound-control command over the plain (certificate-less) unix socket.

    This is the wire protocol unbound-control speaks ("UBCT1 <cmd>\\n", data lines for the
    batch commands ended by a 0x04 line); it saves a process per update, which matters when
    256 pods are published at once.
    """
    payload = f"UBCT1 {command}\n"
    if lines is not None:
        payload += "".join(f"{line}\n" for line in lines) + "\x04\n"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(5.0)
        conn.connect(str(sock_path))
        conn.sendall(payload.encode())
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode()


class _Unbound:
    """One unbound process: config, control socket, pidfile and log under its own directory."""

    def __init__(self, workdir: Path, name: str, netns: str | None, outside: str) -> None:
        self.outside = outside
        self.workdir = workdir
        self.name = name
        self.netns = netns
        self.conf = workdir / f"{name}.conf"
        self.log = workdir / f"{name}.log"
        self.pidfile = workdir / f"{name}.pid"
        sock = workdir / f"{name}.ctl"
        self._sockdir: Path | None = None
        if len(str(sock)) > _SOCK_PATH_MAX:
            self._sockdir = Path(tempfile.mkdtemp(prefix="pa-dns-"))
            sock = self._sockdir / f"{name}.ctl"
        self.sock = sock
        self.proc: subprocess.Popen[bytes] | None = None
        self.ip6 = False

    def config(self, server: str, extra: str = "") -> str:
        return (
            "server:\n"
            f'  directory: "{self.workdir}"\n'
            f'  pidfile: "{self.pidfile}"\n'
            '  chroot: ""\n  username: ""\n  do-daemonize: no\n'
            '  use-syslog: no\n  logfile: ""\n  log-time-ascii: yes\n'
            "  num-threads: 1\n  so-reuseport: no\n"
            # IPv6 only for an IPv6-only cluster's DNS address (no IPv6 elsewhere to talk to).
            f"  do-ip6: {'yes' if self.ip6 else 'no'}\n"
            # CoreDNS takes any number of TCP clients. unbound's default 10 buffers, and its idle
            # timeout cut to 0 once most are busy, reset TCP queries of a 256-pod Service (its
            # answer needs TCP) that a loaded pod had not sent the instant it connected.
            "  incoming-num-tcp: 1024\n"
            "  access-control: 0.0.0.0/0 allow\n  access-control: ::/0 allow\n"
            '  module-config: "iterator"\n'
            # Outside the cluster zone there is nothing to resolve and nowhere to ask.
            f'  local-zone: "." {self.outside}\n'
            f"{server}"
            "remote-control:\n  control-enable: yes\n"
            f'  control-interface: "{self.sock}"\n  control-use-cert: no\n'
            f"{extra}"
        )

    def start(self, text: str) -> None:
        self.conf.write_text(text)
        self.sock.unlink(missing_ok=True)
        argv = [UNBOUND, "-d", "-c", str(self.conf)]
        if self.netns is not None:
            argv = ["nsenter", f"--net=/run/netns/{self.netns}", "--", *argv]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        leftovers.register_pid(self.proc.pid)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def control(self, command: str, lines: Sequence[str] | None = None) -> str:
        return _control(self.sock, command, lines)

    def stats(self) -> dict[str, float]:
        out = self.control("stats_noreset")
        stats: dict[str, float] = {}
        for line in out.splitlines():
            key, sep, value = line.partition("=")
            if sep:
                with contextlib.suppress(ValueError):
                    stats[key] = float(value)
        return stats

    def stop(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout=3)
                except subprocess.TimeoutExpired:
                    # A control client that stalls can wedge unbound's single thread.
                    self.proc.kill()
                    self.proc.wait(timeout=5)
            leftovers.unregister_pid(self.proc.pid)
            self.proc = None
        self.sock.unlink(missing_ok=True)
        if self._sockdir is not None:
            shutil.rmtree(self._sockdir, ignore_errors=True)

    def log_tail(self) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-20:])
        except OSError:
            return ""


class ClusterDNS:
    """Cluster DNS for one zone, on loopback or inside a network namespace.

    `ttl` is the TTL of every record (CoreDNS' `ttl`); `negative_ttl` > 0 puts a caching
    forwarder in front that keeps NXDOMAIN that long (CoreDNS' `cache`).
    """

    def __init__(
        self,
        workdir: Path,
        *,
        zone: str = "cluster.local",
        listen: str = "127.0.0.1",
        port: int = 0,
        netns: str | None = None,
        ttl: int = 0,
        negative_ttl: int = 0,
        outside: str = "refuse",
    ) -> None:
        """outside: what names outside the zone get, `refuse` (REFUSED) or `static`
        (NXDOMAIN, as an upstream resolver answers for a name nobody has)."""
        self.workdir = Path(workdir)
        self.zone = zone.strip(".")
        self.address = listen
        self.port = port
        self.netns = netns
        self.ttl = ttl
        self.negative_ttl = negative_ttl
        self._auto_port = port == 0
        self._backend = _Unbound(self.workdir, "dns", netns, outside)
        self._front: _Unbound | None = None
        if negative_ttl > 0:
            self._front = _Unbound(self.workdir, "dns-cache", netns, "refuse")
            self._front.ip6 = ":" in listen
        else:
            self._backend.ip6 = ":" in listen

    # ---- lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> ClusterDNS:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            for attempt in range(5):
                if self._try_start():
                    return
                # An automatically chosen port was taken between choosing and binding.
                if not self._auto_port or attempt == 4:
                    break
            raise DNSError(f"unbound did not start:\n{self._log_tails()}")
        except BaseException:
            self.stop()
            raise

    def _try_start(self) -> bool:
        soa = (
            f'  local-zone: "{self.zone}." static\n'
            f'  local-data: "{self.zone}. {self.negative_ttl} IN SOA ns.dns.{self.zone}. '
            f'hostmaster.{self.zone}. 1 7200 1800 86400 {self.negative_ttl}"\n'
        )
        if self._front is None:
            port = free_port(self.netns, self.address) if self._auto_port else self.port
            self._backend.start(
                self._backend.config(self._listen(self.address, port) + soa + self._nocache())
            )
            return self._await(self._backend, self.address, port)
        # The front's port first: _await() records the port of the server that answered.
        port = free_port(self.netns, self.address) if self._auto_port else self.port
        back_port = free_port(self.netns, "127.0.0.1")
        self._backend.start(
            self._backend.config(self._listen("127.0.0.1", back_port) + soa + self._nocache())
        )
        if not self._await(self._backend, "127.0.0.1", back_port):
            return False
        front = (
            self._listen(self.address, port)
            + f'  local-zone: "{self.zone}." transparent\n'
            + "  do-not-query-localhost: no\n  prefetch: no\n  serve-expired: no\n"
            # Positive answers are held for the records' own TTL (`ttl`); the cap must not be
            # lower than the SOA's, or negative entries would be clamped to it too.
            + f"  cache-min-ttl: 0\n  cache-max-ttl: {max(self.ttl, self.negative_ttl)}\n"
            + f"  cache-max-negative-ttl: {self.negative_ttl}\n"
        )
        forward = f'forward-zone:\n  name: "{self.zone}."\n  forward-addr: 127.0.0.1@{back_port}\n'
        self._front.start(self._front.config(front, forward))
        return self._await(self._front, self.address, port)

    @staticmethod
    def _listen(host: str, port: int) -> str:
        return f"  interface: {host}\n  port: {port}\n"

    @staticmethod
    def _nocache() -> str:
        return "  cache-max-ttl: 0\n  cache-max-negative-ttl: 0\n"

    def _await(self, server: _Unbound, host: str, port: int) -> bool:
        """Wait until server answers a real query; False if it exited (e.g. port taken)."""
        query = dns.message.make_query(f"{self.zone}.", "SOA")
        deadline = time.monotonic() + START_TIMEOUT
        with netns_socket(self.netns, family_of(host), socket.SOCK_DGRAM) as sock:
            sock.setblocking(False)  # dnspython waits with select on a caller socket
            while time.monotonic() < deadline:
                if not server.alive():
                    server.stop()
                    return False
                try:
                    reply = dns.query.udp(query, host, port=port, timeout=0.1, sock=sock)
                except (dns.exception.Timeout, OSError):
                    continue
                if reply.rcode() == dns.rcode.NOERROR and server.sock.exists():
                    self.port = port
                    return True
        server.stop()
        raise DNSError(f"unbound did not answer on {host}:{port} within {START_TIMEOUT}s")

    def stop(self) -> None:
        if self._front is not None:
            self._front.stop()
        self._backend.stop()

    def _log_tails(self) -> str:
        parts = [self._backend.log_tail()]
        if self._front is not None:
            parts.append(self._front.log_tail())
        return "\n".join(parts)

    # ---- records ---------------------------------------------------------------------------

    def _name(self, fqdn: str) -> str:
        name = fqdn if fqdn.endswith(".") else fqdn + "."
        if not (name == f"{self.zone}." or name.endswith(f".{self.zone}.")):
            raise ValueError(f"{fqdn!r} is outside the cluster zone {self.zone!r}")
        return name

    def _check(self, reply: str, expect: str) -> None:
        if not reply.startswith(expect):
            raise DNSError(f"unbound-control: {reply.strip()}")

    def set_a(self, fqdn: str, addrs: Sequence[str]) -> None:
        """Replace all A records of fqdn (an empty list removes the name)."""
        self.set_many({fqdn: [f"A {a}" for a in addrs]})

    def set_srv(self, fqdn: str, targets: Sequence[tuple[str, int]]) -> None:
        """Replace the SRV records of fqdn: one `0 <weight> <port> <target>` per target."""
        weight = 100 // max(1, len(targets))
        rdatas = [f"SRV 0 {weight} {port} {self._name(t)}" for t, port in targets]
        self.set_many({fqdn: rdatas})

    def set_many(self, records: Mapping[str, Sequence[str]]) -> None:
        """Replace several names at once: {fqdn: ["A 198.18.1.2", "SRV 0 1 80 x.", ...]}.

        unbound cannot replace a name atomically; between the remove and the add a query sees
        NXDOMAIN for about a millisecond. CoreDNS has the same window when an endpoint moves.
        """
        names = [self._name(n) for n in records]
        if not names:
            return
        self._check(self._backend.control("local_datas_remove", names), "removed")
        lines = [f"{self._name(n)} {self.ttl} IN {rd}" for n, rds in records.items() for rd in rds]
        if lines:
            reply = self._backend.control("local_datas", lines)
            if "error" in reply:
                raise DNSError(f"unbound-control: {reply.strip()}")

    def remove(self, fqdn: str) -> None:
        """Withdraw every record of fqdn: it answers NXDOMAIN from now on."""
        self.remove_many([fqdn])

    def remove_many(self, fqdns: Sequence[str]) -> None:
        names = [self._name(n) for n in fqdns]
        if names:
            self._check(self._backend.control("local_datas_remove", names), "removed")

    def flush_cache(self) -> None:
        """Drop what the caching front holds for the zone (no-op without one)."""
        if self._front is not None:
            self._check(self._front.control(f"flush_zone {self.zone}."), "ok")

    # ---- observation -----------------------------------------------------------------------

    def queries(self) -> int:
        """Total queries clients sent so far (the front's count when there is a cache)."""
        server = self._front if self._front is not None else self._backend
        return int(server.stats().get("total.num.queries", 0))

    def backend_queries(self) -> int:
        """Queries that reached the authoritative backend (cache misses, with a front)."""
        return int(self._backend.stats().get("total.num.queries", 0))
