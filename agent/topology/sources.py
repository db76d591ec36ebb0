"""Where each value of the topology came from: a flag, a variable (the user's or a controller's),
a file kubelet writes into the pod, or derived from another value. Recorded as the values are
derived, so the start line and ``doctor`` say it truthfully (``--index`` passed is not
"JOB_COMPLETION_INDEX is set").

Pure.
"""

from __future__ import annotations

from enum import StrEnum

from agent.values import fields, value

__all__ = [
    "HOSTNAME",
    "HOSTS_FILE",
    "RESOLV_CONF",
    "SA_NAMESPACE",
    "Origin",
    "Source",
    "Sources",
]


class Origin(StrEnum):
    FLAG = "flag"  # on the command line (or the Python API's keyword)
    VARIABLE = "variable"  # in the environment: the user's PEER_AGENT_*, or a controller's
    POD_FILE = "pod file"  # a file in the pod: /etc/hosts, resolv.conf, a hostfile
    DERIVED = "derived"  # from another value (the hostname, the Service's name)
    DEFAULT = "default"  # nothing said it: the agent's default


@value
class Source:
    origin: Origin
    #: the flag, the variable or the file; for a derived value, what it was derived from
    name: str

    def __str__(self) -> str:
        return self.name

    @property
    def given(self) -> str:
        """How a sentence quotes it: ``--index is given``, ``JOB_COMPLETION_INDEX is set``."""
        return f"{self.name} is {'given' if self.origin is Origin.FLAG else 'set'}"


HOSTNAME = Source(Origin.DERIVED, "the hostname")
HOSTS_FILE = Source(Origin.POD_FILE, "/etc/hosts")
RESOLV_CONF = Source(Origin.POD_FILE, "/etc/resolv.conf")
SA_NAMESPACE = Source(Origin.POD_FILE, "the service account's namespace file")


@value
class Sources:
    """Where each value of a :class:`~agent.topology.model.Topology` came from (None: it has
    no such value, as a pod asking for each peer by name has no Service)."""

    peers: Source | None = None
    index: Source | None = None
    job: Source | None = None
    service: Source | None = None
    namespace: Source | None = None
    zone: Source | None = None

    def describe(self) -> str:
        """``peers from PEER_AGENT_PEERS; index from --index; job from the hostname; service,
        namespace and zone from /etc/hosts``: the values grouped by where they came from."""
        named: dict[Source, list[str]] = {}
        for f in fields(self):
            if (source := getattr(self, f.name)) is not None:
                named.setdefault(source, []).append(f.name)
        return "; ".join(f"{_listed(names)} from {source}" for source, names in named.items())

    def as_fields(self) -> dict[str, dict[str, str]]:
        """The same for a JSON log line: ``{"index": {"origin": "flag", "name": "--index"}}``."""
        out = {}
        for f in fields(self):
            if (source := getattr(self, f.name)) is not None:
                out[f.name] = {"origin": str(source.origin), "name": source.name}
        return out


def _listed(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
