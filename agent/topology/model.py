"""Who the peers are: N names, this pod's position among them, and the Service to ask.

Pure: no I/O. One frozen :class:`Topology` for every framework, with a small *naming* value per
controller (how peer ``i``'s hostname is spelled), because what differs between Indexed Jobs,
JobSet, LeaderWorkerSet, Kubeflow Trainer and a launcher's hostfile is only that spelling, the
Service and whether this pod is among the peers; everything the core reads (``peers``, ``index``,
``job``, ``fqdn(i)``, ``service_fqdn``) means the same for all of them.

- :class:`Suffixed` ``<prefix>-<i>``: an Indexed Job (prefix = Job name), a Trainer's node Job.
- :class:`LeaderWorkers` ``<prefix>`` then ``<prefix>-<i>``: one LeaderWorkerSet group.
- :class:`JobSetGrid` ``<jobset>-<rjob>-<jobIdx>-<podIdx>`` over listed replicatedJobs, in order.
- :class:`ReplicaGroups` ``<job>-<type>-<i>`` over replica types, in order: the Kubeflow Training
  Operator's v1 jobs (PyTorchJob, TFJob, ...), whose pods are each their own Service.
- :class:`Listed`: names as a hostfile gives them (already absolute), for one-sided waits.

Peer names are absolute (trailing dot) so that each costs one DNS query instead of a walk down the
``ndots:5`` search list. ``index`` is ``None`` when this pod is not one of the peers (a launcher
waiting for its workers): the core then only reaches them, with no barrier of its own.
"""

from __future__ import annotations

from enum import StrEnum

from agent.topology.sources import Sources
from agent.values import field, value

__all__ = [
    "JobSetGrid",
    "Kind",
    "LeaderWorkers",
    "Listed",
    "Naming",
    "ReplicaGroups",
    "ReplicaType",
    "ReplicatedJob",
    "Suffixed",
    "Topology",
    "is_dns_label",
    "is_dns_subdomain",
]

#: what a DNS-1123 label is made of (ASCII only: str.isalnum would take any script's letters)
_LABEL_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")


def is_dns_label(text: str) -> bool:
    """A DNS-1123 label, as Kubernetes validates hostnames and Service names: 1 to 63 lower
    case letters, digits and hyphens, neither first nor last a hyphen. (Character tests, not a
    regular expression: compiling one cost every start 0.8 million instructions.)"""
    return (
        0 < len(text) <= 63
        and text[0] != "-"
        and text[-1] != "-"
        and _LABEL_CHARACTERS.issuperset(text)
    )


def is_dns_subdomain(text: str) -> bool:
    return 0 < len(text) <= 253 and all(is_dns_label(part) for part in text.split("."))


class Kind(StrEnum):
    """Which controller made the pods (``--topology``)."""

    INDEXED_JOB = "indexed-job"
    JOBSET = "jobset"
    LWS = "lws"
    TRAINER = "trainer"
    TRAINING_OPERATOR = "training-operator"
    HOSTFILE = "hostfile"


@value
class Suffixed:
    """``<prefix>-<i>``: the Job controller's hostname for completion index ``i``."""

    prefix: str

    def hostname(self, i: int) -> str:
        return f"{self.prefix}-{i}"


@value
class LeaderWorkers:
    """A LeaderWorkerSet group: the leader ``<lws>-<g>`` is 0, worker ``w`` is ``<lws>-<g>-<w>``."""

    prefix: str

    def hostname(self, i: int) -> str:
        return self.prefix if i == 0 else f"{self.prefix}-{i}"


@value
class ReplicatedJob:
    """One ``spec.replicatedJobs[]`` entry: ``replicas`` child Jobs of ``pods`` pods each."""

    name: str
    replicas: int
    pods: int

    @property
    def size(self) -> int:
        return self.replicas * self.pods


@value
class JobSetGrid:
    """JobSet's ``<jobset>-<rjob>-<jobIdx>-<podIdx>``; rank runs through ``jobs`` in order."""

    jobset: str
    jobs: tuple[ReplicatedJob, ...]

    def hostname(self, i: int) -> str:
        for job in self.jobs:
            if i < job.size:
                return f"{self.jobset}-{job.name}-{i // job.pods}-{i % job.pods}"
            i -= job.size
        raise IndexError(i)

    def rank(self, name: str, job_index: int, pod_index: int) -> int:
        """The global position of pod ``pod_index`` of child Job ``job_index`` of ``name``."""
        offset = 0
        for job in self.jobs:
            if job.name == name:
                return offset + job_index * job.pods + pod_index
            offset += job.size
        raise KeyError(name)


@value
class ReplicaType:
    """One replica type of a Training Operator job as its pod names spell it (``master``,
    ``worker``, ``chief``, ``ps``, ``evaluator``), and how many replicas it has."""

    name: str
    replicas: int


@value
class ReplicaGroups:
    """The Training Operator's ``<job>-<type>-<i>``; rank runs through ``types`` in order."""

    job: str
    types: tuple[ReplicaType, ...]

    def hostname(self, i: int) -> str:
        for group in self.types:
            if i < group.replicas:
                return f"{self.job}-{group.name}-{i}"
            i -= group.replicas
        raise IndexError(i)

    def rank(self, name: str, i: int) -> int | None:
        """The position of replica ``i`` of type ``name``; None when there is no such pod."""
        offset = 0
        for group in self.types:
            if group.name == name:
                return offset + i if i < group.replicas else None
            offset += group.replicas
        return None


@value
class Listed:
    """Names taken from a file, each absolute without the trailing dot."""

    names: tuple[str, ...]

    def hostname(self, i: int) -> str:
        return self.names[i].split(".", 1)[0]


Naming = Suffixed | LeaderWorkers | JobSetGrid | ReplicaGroups | Listed


@value(kw_only=True)
class Topology:
    """The peers as DNS sees them; ``index`` is this pod (None: not one of them)."""

    kind: Kind
    #: the identity every pod of one barrier shares (their hello carries it)
    job: str
    naming: Naming
    #: the headless Service the peers are published in; None when there is no one Service
    service: str | None
    namespace: str
    zone: str
    peers: int
    index: int | None
    #: why ``--topology auto`` chose ``kind`` (or that it was given), for the start line
    reason: str = ""
    #: where ``peers``, ``index``, ``job``, ``service``, ``namespace`` and ``zone`` came from
    sources: Sources = field(default_factory=Sources)
    #: the ``WORLD_SIZE`` the controller computed, when it set one: the Training Operator's is
    #: pods x ``nprocPerNode``, which the workload keeps
    controller_world_size: int | None = None

    def hostname(self, i: int) -> str:
        return self.naming.hostname(i)

    def display(self, i: int) -> str:
        """The name users see in logs and output files (no trailing dot)."""
        if isinstance(self.naming, Listed):
            return self.naming.names[i]
        return f"{self.hostname(i)}.{self.domain}"

    def fqdn(self, i: int) -> str:
        """The absolute DNS name of peer ``i`` (trailing dot)."""
        return f"{self.display(i)}."

    @property
    def domain(self) -> str:
        """``<service>.<namespace>.svc.<zone>`` (no trailing dot); without a Service, the
        namespace's ``<namespace>.svc.<zone>``."""
        base = f"{self.namespace}.svc.{self.zone}"
        return f"{self.service}.{base}" if self.service else base

    @property
    def service_fqdn(self) -> str | None:
        """The headless Service's own name: one A record per published pod (bulk discovery)."""
        return f"{self.domain}." if self.service else None

    @property
    def world_size(self) -> int:
        """``WORLD_SIZE`` for the workload: the controller's when it set one, else the pods."""
        return self.peers if self.controller_world_size is None else self.controller_world_size

    @property
    def indices(self) -> range:
        return range(self.peers)

    def describe(self) -> str:
        """Which topology and why, for the start line and doctor:
        ``jobset (PEER_AGENT_REPLICATED_JOBS is set)``."""
        return f"{self.kind}" + (f" ({self.reason})" if self.reason else "")
