"""Who the peers are: names derived from the job, service, namespace and cluster domain.

Pure: no I/O. Peer names are absolute (trailing dot) so that each costs one DNS query instead of
a walk down the ``ndots:5`` search list.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Topology", "is_dns_label", "is_dns_subdomain"]

_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def is_dns_label(text: str) -> bool:
    """A DNS-1123 label, as Kubernetes validates hostnames and Service names."""
    return len(text) <= 63 and bool(_LABEL.match(text))


def is_dns_subdomain(text: str) -> bool:
    return 0 < len(text) <= 253 and all(is_dns_label(part) for part in text.split("."))


@dataclass(frozen=True, kw_only=True)
class Topology:
    """The Job's pods as DNS sees them; ``index`` is this pod."""

    job: str
    service: str
    namespace: str
    zone: str
    peers: int
    index: int

    def hostname(self, i: int) -> str:
        return f"{self.job}-{i}"

    @property
    def domain(self) -> str:
        """``<service>.<namespace>.svc.<zone>`` without the trailing dot."""
        return f"{self.service}.{self.namespace}.svc.{self.zone}"

    @property
    def service_fqdn(self) -> str:
        """The headless Service's own name: one A record per published pod."""
        return f"{self.domain}."

    def fqdn(self, i: int) -> str:
        """The absolute DNS name of peer ``i`` (trailing dot)."""
        return f"{self.hostname(i)}.{self.domain}."

    def display(self, i: int) -> str:
        """The name users see in logs and output files (no trailing dot)."""
        return f"{self.hostname(i)}.{self.domain}"

    @property
    def indices(self) -> range:
        return range(self.peers)
