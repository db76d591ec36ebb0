"""DNS adapter: dnspython's async resolver, with every failure named the way users debug it.

No cache of its own (a name not yet published must be asked again, not remembered as missing),
absolute names only, and the async backend chosen explicitly so asyncio and trio both work.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import dns.asyncbackend
import dns.asyncresolver
import dns.exception
import dns.message
import dns.rcode
import dns.rdatatype
import dns.resolver
import sniffio

__all__ = ["Resolution", "Resolver"]

UDP_RECORDS = 24  # about what fits a classic 512-byte UDP answer for cluster names


@dataclass(frozen=True)
class Resolution:
    """Addresses found, or why none: NXDOMAIN, no answer, timeout, SERVFAIL, refused, …"""

    addresses: tuple[str, ...] = ()
    problem: str = ""


def _rcode_problem(errors: Sequence[tuple[object, ...]]) -> str:
    names = set()
    for error in errors:
        response = error[-1]
        if isinstance(response, dns.message.Message):
            names.add(dns.rcode.to_text(response.rcode()))
        elif isinstance(response, BaseException):
            names.add(type(response).__name__)
    return ", ".join(sorted(names)) or "no nameserver answered"


class Resolver:
    def __init__(self, servers: Sequence[tuple[str, int]], *, attempt_timeout: float = 2.0) -> None:
        if not servers:
            raise ValueError("no DNS server (no nameserver in /etc/resolv.conf; use --dns-server)")
        self._resolver = dns.asyncresolver.Resolver(configure=False)
        self._resolver.nameservers = [host for host, _ in servers]
        self._resolver.nameserver_ports = {host: port for host, port in servers}
        self._resolver.port = servers[0][1]
        self._resolver.cache = None
        self._resolver.search = []
        self._resolver.use_search_by_default = False
        self._lifetime = attempt_timeout
        self.queries = 0
        #: names whose answer is too big for UDP (a large Service): asked over TCP at once,
        #: instead of a truncated UDP answer followed by the same query over TCP every round
        self._over_tcp: set[str] = set()

    async def _query(self, name: str, rdtype: str) -> list[str]:
        backend = dns.asyncbackend.get_backend(sniffio.current_async_library())
        self.queries += 1
        answer = await self._resolver.resolve(
            name,
            rdtype,
            tcp=name in self._over_tcp,
            lifetime=self._lifetime,
            backend=backend,
            search=False,
        )
        records = [r.to_text() for r in answer]
        if len(records) > UDP_RECORDS:
            self._over_tcp.add(name)
        return records

    async def addresses(self, name: str) -> Resolution:
        """A records, and AAAA only when the name exists without A (one query per name normally)."""
        try:
            try:
                return Resolution(tuple(await self._query(name, "A")))
            except dns.resolver.NoAnswer:
                return Resolution(tuple(await self._query(name, "AAAA")))
        except dns.resolver.NXDOMAIN:
            return Resolution(problem="NXDOMAIN")
        except dns.resolver.NoAnswer:
            return Resolution(problem="no address record")
        except dns.resolver.NoNameservers as exc:
            return Resolution(problem=_rcode_problem(exc.kwargs.get("errors", [])))
        except dns.exception.Timeout:
            return Resolution(problem="DNS timeout")
        except dns.exception.DNSException as exc:
            return Resolution(problem=f"DNS error: {exc}")
        except OSError as exc:
            return Resolution(problem=f"DNS error: {exc.strerror or exc}")
