"""What deriving a topology reads: the options, the pod's facts, and where problems go.

Shared by the per-controller derivations (``jobs``, ``injected``, ``hostfile``); pure.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from agent.options import OPTIONS
from agent.problems import Problems
from agent.topology.model import Naming, is_dns_label
from agent.topology.podfiles import HostsEntry, PodFacts, parse_resolv_conf
from agent.topology.sources import HOSTS_FILE, RESOLV_CONF, Origin, Source, Sources
from agent.values import field, value

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
    #: where the values came from (the namespace's and zone's: only when it decided them)
    sources: Sources = field(default_factory=Sources)
    #: the controller's own WORLD_SIZE (processes, not pods), when it set one
    world_size: int | None = None


def is_number(text: str) -> bool:
    """ASCII digits only: str.isdigit() also passes '²', which int() then refuses."""
    text = text.strip()
    return text.isascii() and text.isdigit()


@value
class Inputs:
    """The merged options (``get``), the pod's facts, its hostname and /etc/hosts line;
    ``given``: whether each option given came as a flag or a variable (a flag, if not said)."""

    get: Callable[[str], str | None]
    facts: PodFacts
    hostname: str
    entry: HostsEntry | None
    p: Problems
    given: Mapping[str, Origin] = field(default_factory=dict)

    def source(self, dest: str, var: str = "") -> Source | None:
        """Where option ``dest`` came from when given, else the controller's variable ``var``
        when it is set (what ``count`` reads, in the same order)."""
        if self.get(dest) is not None:
            option, origin = OPT[dest], self.given.get(dest, Origin.FLAG)
            return Source(origin, option.flag if origin is Origin.FLAG else option.env)
        if var and self.environ.get(var):
            return Source(Origin.VARIABLE, var)
        return None

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

    @property
    def zone_source(self) -> Source:
        """Where ``zone`` came from, in the same order."""
        if (source := self.source("cluster_domain")) is not None:
            return source
        if self.entry is not None and self.entry.zone:
            return HOSTS_FILE
        return RESOLV_CONF if self.searched else Source(Origin.DEFAULT, "the default")

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

    def service_source(self) -> Source | None:
        """Where ``service()`` came from."""
        return self.source("service") or (HOSTS_FILE if self.entry else None)

    def service(self) -> str | None:
        service = self.get("service") or (self.entry.subdomain if self.entry else None)
        if service is None:
            self.p.add(
                OPT["service"],
                "cannot derive the service: no '<hostname>.<subdomain>.<ns>.svc.<zone>' line in "
                "/etc/hosts (set spec.subdomain to the headless Service's name)",
            )
        return service
