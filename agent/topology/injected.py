"""Pods whose controller injects the peer count and this pod's rank: a LeaderWorkerSet group
(``LWS_*``) and a Kubeflow Trainer job (``PET_*``). Zero configuration: both also name the leader.

Pure.
"""

from __future__ import annotations

from agent.topology.inputs import OPT, Derived, Inputs
from agent.topology.model import LeaderWorkers, Naming, Suffixed
from agent.topology.sources import Origin, Source, Sources

__all__ = ["lws", "trainer"]


def lws(i: Inputs, namespace: str | None) -> Derived | None:
    labels = i.address("LWS_LEADER_ADDRESS")
    peers = i.count("peers", "LWS_GROUP_SIZE", minimum=1)
    index = i.count("index", "LWS_WORKER_INDEX", minimum=0)
    if labels is None or peers is None or index is None:
        return None
    naming = LeaderWorkers(labels[0])
    service = i.get("service") or labels[1]
    namespace = i.get("namespace") or (labels[2] if len(labels) > 2 else namespace)
    sources = _sources(i, "LWS_LEADER_ADDRESS", "LWS_GROUP_SIZE", "LWS_WORKER_INDEX", labels)
    return _member(
        i, naming, labels[0], service, namespace, peers, index, "LWS_WORKER_INDEX", sources
    )


def trainer(i: Inputs, namespace: str | None) -> Derived | None:
    labels = i.address("PET_MASTER_ADDR")
    peers = i.count("peers", "PET_NNODES", minimum=1)
    rank_var = "PET_NODE_RANK" if i.environ.get("PET_NODE_RANK") else "JOB_COMPLETION_INDEX"
    index = i.count("index", rank_var, minimum=0)
    if labels is None or peers is None or index is None:
        return None
    if not labels[0].endswith("-0"):
        i.p.add(None, f"PET_MASTER_ADDR: {labels[0]!r} is not node 0 (<trainjob>-node-0-0)")
        return None
    naming = Suffixed(labels[0][:-2])
    service = i.get("service") or labels[1]
    namespace = i.get("namespace") or (labels[2] if len(labels) > 2 else namespace)
    sources = _sources(i, "PET_MASTER_ADDR", "PET_NNODES", rank_var, labels)
    return _member(i, naming, labels[1], service, namespace, peers, index, rank_var, sources)


def _sources(i: Inputs, address: str, count: str, rank: str, labels: list[str]) -> Sources:
    """The leader's ``address`` variable names the job, the Service and maybe the namespace;
    the others come from the options over the controller's ``count`` and ``rank``."""
    leader = Source(Origin.VARIABLE, address)
    return Sources(
        peers=i.source("peers", count),
        index=i.source("index", rank),
        job=leader,
        service=i.source("service") or leader,
        # None: the namespace derive_topology found (the pod's files)
        namespace=i.source("namespace") or (leader if len(labels) > 2 else None),
    )


def _member(
    i: Inputs,
    naming: Naming,
    job: str,
    service: str,
    namespace: str | None,
    peers: int,
    index: int,
    index_var: str,
    sources: Sources,
) -> Derived | None:
    """A pod that a controller numbered: its index must be below N and name its hostname."""
    if index >= peers:
        i.p.add(OPT["index"], f"index {index} is not below the peer count {peers}", also=index_var)
        return None
    if i.hostname and naming.hostname(index) != i.hostname:
        i.p.add(
            OPT["hostname"],
            f"{i.hostname!r} is not peer {index}'s hostname {naming.hostname(index)!r} "
            f"({index_var}={index})",
        )
        return None
    return Derived(job, naming, service, namespace, peers, index, sources)
