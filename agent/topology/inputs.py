"""What deriving a topology reads: the options, the pod's facts, and where problems go.

Shared by the per-controller derivations (``jobs``, ``injected``, ``hostfile``); pure.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from agent.options import OPTIONS
from agent.problems import Problems
from agent.topology.model import Naming, is_dns_label
from agent.topology.podfiles import HostsEntry, PodFacts, parse_resolv_conf
from agent.values import value

__all__ = ["OPT", "Derived", "Inputs", "is_number"]

OPT = {o.dest: o for o in OPTIONS}


@value
class Derived:
    """What one controller's derivation found; ``derive_topology`` checks it and makes the
    :class:`~agent.topology.model.Topology`. A frozen value, not a tuple: read by name."""

    #: the identity every pod of one barrier shares (their hello carries it)
    job: str
    naming: Naming
    #: the headless Service that lists every peer; None: each peer is asked for by name
    service: str | None
    #: None when neither the controller's variables nor the pod's files say
    namespace: str | None
    peers: int
    #: this pod's position; None when it is not one of the peers (a launcher)
    index: int | None


def is_number(text: str) -> bool:
    """ASCII digits only: str.isdigit() also passes '²', which int() then refuses."""
    text = text.strip()
    return text.isascii() and text.isdigit()


@value
class Inputs:
    """The merged options (``get``), the pod's facts, its hostname and /etc/hosts line."""

    get: Callable[[str], str | None]
    facts: PodFacts
    hostname: str
    entry: HostsEntry | None
    p: Problems

    @property
    def environ(self) -> Mapping[str, str]:
        return self.facts.environ

    @property
    def searched(self) -> tuple[str, str] | None:
        """(namespace, zone) as the pod's resolv.conf search list has them."""
        return parse_resolv_conf(self.facts.resolv_conf).pod_domain()

    @property
    def zone(self) -> str:
        """The cluster domain: the flag, else the /etc/hosts line's, else the search list's,
        else cluster.local."""
        given = self.get("cluster_domain") or (self.entry.zone if self.entry else None)
        searched = self.searched
        return (given or (searched[1] if searched else "cluster.local")).rstrip(".")

    def count(self, dest: str, var: str, *, minimum: int) -> int | None:
        """An integer from the option when given, else from the controller's variable."""
        text, also = self.get(dest), ""
        if text is None and self.environ.get(var):
            text, also = self.environ[var], var
        if text is None:
            self.p.add(OPT[dest], "required", also=var)
            return None
        if not is_number(text) or int(text) < minimum:
            what = "a positive" if minimum else "a non-negative"
            self.p.add(OPT[dest], f"not {what} integer: {text!r}", also=also or var)
            return None
        return int(text)

    def address(self, var: str) -> list[str] | None:
        """``<host>.<service>[.<ns>...]`` from a controller's variable, split into labels."""
        text = self.environ.get(var, "").strip().lower().rstrip(".")
        labels = text.split(".")
        if len(labels) < 2 or not all(is_dns_label(x) for x in labels):
            self.p.add(None, f"{var}: not <host>.<service>[.<namespace>]: {text!r}")
            return None
        return labels

    def service(self) -> str | None:
        service = self.get("service") or (self.entry.subdomain if self.entry else None)
        if service is None:
            self.p.add(
                OPT["service"],
                "cannot derive the service: no '<hostname>.<subdomain>.<ns>.svc.<zone>' line in "
                "/etc/hosts (set spec.subdomain to the headless Service's name)",
            )
        return service
