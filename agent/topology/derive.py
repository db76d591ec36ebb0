"""Which controller made this pod, and its :class:`~agent.topology.model.Topology`, from the options
and what the pod already has. Pure: it reads only the values and facts it is given.

``--topology auto`` decides from what each controller gives a pod, first match wins:

=====================================  ===========  ========================================
the pod has                            topology     peers and this pod's index
=====================================  ===========  ========================================
``--peers-from FILE``                  hostfile     the hosts listed; index = this pod's line
``LWS_LEADER_ADDRESS`` (LWS injects)   lws          ``LWS_GROUP_SIZE``, ``LWS_WORKER_INDEX``
``VC_<TASK>_HOSTS`` naming this pod    hostfile     the task's hosts (Volcano's svc plugin)
``PET_NNODES``, ``TF_CONFIG``, …       training-    the operator's count; the hostname
and a hostname ``<job>-<type>-<i>``    operator     ``<job>-<type>-<i>`` gives the rank
``PET_MASTER_ADDR`` (Trainer injects)  trainer      ``PET_NNODES``, ``PET_NODE_RANK``
``--replicated-jobs`` (the user sets)  jobset       the listed shape; hostname gives the rank
anything else                          indexed-job  ``--peers``, ``JOB_COMPLETION_INDEX``
=====================================  ===========  ========================================
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import cast

from agent.problems import Problems
from agent.topology.inputs import OPT, Derived, Inputs
from agent.topology.marks import signature, volcano_hosts
from agent.topology.model import (
    JobSetGrid,
    Kind,
    Listed,
    Naming,
    ReplicaGroups,
    Topology,
    is_dns_label,
    is_dns_subdomain,
)
from agent.topology.podfiles import HostsEntry, PodFacts
from agent.topology.sources import HOSTS_FILE, RESOLV_CONF, SA_NAMESPACE, Origin, Source
from agent.values import replace

__all__ = ["choose_kind", "derive_topology"]


def choose_kind(i: Inputs) -> tuple[Kind, str]:
    """The topology and why: ``--topology`` when given, else the first input the pod has (as
    it was given: ``--index is given``, or ``JOB_COMPLETION_INDEX is set``)."""
    environ, hostname = i.environ, i.hostname
    given = i.get("topology")
    if given is not None and given != "auto":
        return Kind(given), ""  # given, not chosen: nothing to explain
    if (peers_from := i.source("peers_from")) is not None:
        return Kind.HOSTFILE, peers_from.given
    if environ.get("LWS_LEADER_ADDRESS"):
        return Kind.LWS, "LWS_LEADER_ADDRESS is set: a LeaderWorkerSet pod"
    # Volcano's <job>-<task>-<i> pods may look like the Training Operator's (its tensorflow
    # plugin sets TF_CONFIG), and a PyTorchJob's master sets PET_MASTER_ADDR as Trainer does.
    if (volcano := volcano_hosts(environ, hostname)) is not None:
        return Kind.HOSTFILE, f"{volcano[0]} lists this pod: a Volcano pod"
    if (variable := signature(environ, hostname)) is not None:
        return Kind.TRAINING_OPERATOR, f"{variable} is set: a Kubeflow Training Operator pod"
    if environ.get("PET_MASTER_ADDR"):
        return Kind.TRAINER, "PET_MASTER_ADDR is set: a Kubeflow Trainer pod"
    if (shape := i.source("replicated_jobs")) is not None:
        return Kind.JOBSET, shape.given
    if (index := i.source("index")) is not None:
        return Kind.INDEXED_JOB, f"{index.given}: an Indexed Job pod"
    return Kind.INDEXED_JOB, "nothing else matched"


def derive_topology(
    get: Callable[[str], str | None],
    facts: PodFacts,
    *,
    hostname: str,
    entry: HostsEntry | None,
    p: Problems,
    given: Mapping[str, Origin] | None = None,
) -> Topology | None:
    """The topology, or None with the reasons added to ``p``; ``given``: whether each option
    came as a flag or a variable (a flag, if not said), for the topology's ``sources``."""
    topology_text = get("topology")
    if topology_text is not None and topology_text not in ("auto", *Kind):
        p.add(
            OPT["topology"],
            f"unknown topology {topology_text!r} (use auto, {', '.join(Kind)})",
        )
        return None
    i = Inputs(get, facts, hostname, entry, p, given or {})
    kind, reason = choose_kind(i)
    namespace, namespace_source = _namespace(i)
    if not is_dns_subdomain(i.zone):
        p.add(OPT["cluster_domain"], f"{i.zone!r} is not a DNS domain")
    derived = _derivation(kind)(i, namespace)
    if derived is not None:
        namespace = derived.namespace
        namespace_source = derived.sources.namespace or namespace_source
    if namespace is None:
        p.add(
            OPT["namespace"],
            "cannot derive the namespace from /etc/hosts, the service-account files or the "
            "resolv.conf search list; set it (fieldRef metadata.namespace)",
        )
    if derived is None or namespace is None:
        return None
    for what, name in (("service", derived.service), ("namespace", namespace)):
        if name is not None and not is_dns_label(name):
            p.add(OPT[what], f"{name!r} is not a DNS-1123 label")
    for last in _longest_names(derived.naming, derived.peers):
        if not is_dns_label(last):
            why = "is over 63 characters" if len(last) > 63 else "is not a DNS-1123 label"
            p.add(OPT["job_name"], f"peer hostname {last!r} {why}")
    if p.items:
        return None
    return Topology(
        kind=kind,
        job=derived.job,
        naming=derived.naming,
        service=derived.service,
        namespace=namespace,
        zone=i.zone,
        peers=derived.peers,
        index=derived.index,
        reason=reason,
        controller_world_size=derived.world_size,
        sources=replace(derived.sources, namespace=namespace_source, zone=i.zone_source),
    )


#: each controller's derivation: (module of agent.topology, function)
_DERIVATIONS = {
    Kind.INDEXED_JOB: ("jobs", "indexed_job"),
    Kind.JOBSET: ("jobs", "jobset"),
    Kind.LWS: ("injected", "lws"),
    Kind.TRAINER: ("injected", "trainer"),
    Kind.TRAINING_OPERATOR: ("training_operator", "training_operator"),
    Kind.HOSTFILE: ("hostfile", "hostfile"),
}


def _derivation(kind: Kind) -> Callable[[Inputs, str | None], Derived | None]:
    """The derivation of ``kind``'s topology, its module imported now: a pod's start imports
    its own controller's only."""
    module, name = _DERIVATIONS[kind]
    found = getattr(importlib.import_module(f"agent.topology.{module}"), name)
    return cast("Callable[[Inputs, str | None], Derived | None]", found)


def _namespace(i: Inputs) -> tuple[str | None, Source | None]:
    """The namespace before a controller's variables say otherwise, and where it came from: the
    option, the /etc/hosts line, the service account's file, the resolv.conf search list."""
    if (given := i.get("namespace")) is not None:
        return given, i.source("namespace")
    if i.entry is not None and i.entry.namespace:
        return i.entry.namespace, HOSTS_FILE
    if sa_namespace := i.facts.sa_namespace.strip():
        return sa_namespace, SA_NAMESPACE
    if i.searched:
        return i.searched[0], RESOLV_CONF
    return None, None


def _longest_names(naming: Naming, peers: int) -> list[str]:
    """The hostnames with the most digits: the last pod's, of each replicatedJob under JobSet."""
    if isinstance(naming, Listed):
        return []
    if isinstance(naming, JobSetGrid):
        return [f"{naming.jobset}-{j.name}-{j.replicas - 1}-{j.pods - 1}" for j in naming.jobs]
    if isinstance(naming, ReplicaGroups):
        return [f"{naming.job}-{t.name}-{t.replicas - 1}" for t in naming.types]
    return [naming.hostname(peers - 1)]
