"""Pods of the Kubeflow Training Operator v1 (``kubeflow.org/v1`` PyTorchJob, XGBoostJob, JAXJob,
PaddleJob, TFJob). Zero configuration: the operator's own variables give the pod count and rank.

What the operator does for every kind (``pkg/controller.v1``, v1.7 to v1.9): replica ``i`` of
type ``T`` is the pod ``<job>-<t>-<i>`` (``t`` = ``T`` in lower case) with no ``hostname`` or
``subdomain`` (so the pod name is the hostname), and the headless Service of the same name
selects that one pod: ``<job>-<t>-<i>.<ns>.svc.<zone>`` is the pod's DNS name, published once
the pod is Ready (the Services do not publish not-ready addresses). Its variables go into every
container, never into init containers:

==============  ==========================================  ================================
kind            the pod count, and this pod's rank           replica types in rank order
==============  ==========================================  ================================
PyTorchJob      ``PET_NNODES`` (``N`` or elastic ``MIN:MAX``),  master (1, when there is one
                ``PET_NODE_RANK`` when there is a master    and ``PET_MASTER_ADDR`` names
                                                            it), worker
XGBoostJob      ``WORLD_SIZE``, ``RANK``                    master (1), worker
JAXJob          ``NUM_PROCESSES``, ``PROCESS_ID``           worker
PaddleJob       ``PADDLE_NNODES`` (collective: workers)     worker
TFJob           ``TF_CONFIG``: every replica, and the task  as ``TF_CONFIG`` lists them
==============  ==========================================  ================================

The hostname says which replica this pod is; the rank variable, when there is one, must agree.
Pure.
"""

from __future__ import annotations

import json
import re

from agent.topology.inputs import OPT, Derived, Inputs, is_number
from agent.topology.marks import TRAINING_OPERATOR_HOST, TRAINING_OPERATOR_TYPES
from agent.topology.model import ReplicaGroups, ReplicaType
from agent.topology.sources import HOSTNAME, Origin, Source, Sources
from agent.values import value

__all__ = ["training_operator"]


@value
class _Shape:
    """What one kind's variables say: the replica types, and this pod's rank if they say it."""

    types: tuple[ReplicaType, ...]
    rank: tuple[str, int] | None = None  # (variable, value)
    namespace: str | None = None
    #: where the count came from: the kind's variable, or --peers for an elastic range
    count: Source | None = None


def training_operator(i: Inputs, namespace: str | None) -> Derived | None:
    host = re.match(TRAINING_OPERATOR_HOST, i.hostname)
    if host is None:
        i.p.add(
            OPT["hostname"],
            f"{i.hostname!r} is not <job>-<type>-<index> (type "
            f"{TRAINING_OPERATOR_TYPES.replace('|', ', ')}): "
            "the Training Operator names its pods so",
        )
        return None
    job = i.get("job_name") or host["job"]
    shape = _shape(i, job)
    if shape is None:
        return None
    groups = ReplicaGroups(job, tuple(t for t in shape.types if t.replicas > 0))
    peers = sum(t.replicas for t in groups.types)
    index = groups.rank(host["type"], int(host["i"]))
    if index is None or groups.hostname(index) != i.hostname:
        listed = ", ".join(f"{t.name}={t.replicas}" for t in groups.types)
        i.p.add(OPT["hostname"], f"{i.hostname!r} is not one of {job}'s pods ({listed})")
        return None
    if shape.rank is not None and shape.rank[1] != index:
        var, rank = shape.rank
        i.p.add(None, f"{var}: {rank} is not the rank of {i.hostname!r} ({index})")
    if (given := i.get("index")) is not None and given != str(index):
        i.p.add(OPT["index"], f"{given!r} is not the rank of {i.hostname!r} ({index})")
    service = i.get("service") or (i.entry.subdomain if i.entry else None)
    sources = Sources(
        peers=shape.count,
        index=HOSTNAME,
        job=i.source("job_name") or HOSTNAME,
        service=i.service_source(),
        namespace=Source(Origin.VARIABLE, "TF_CONFIG") if shape.namespace else None,
    )
    namespace = shape.namespace or namespace
    world = i.environ.get("WORLD_SIZE", "").strip()  # pods x nprocPerNode: the workload's own
    world_size = int(world) if is_number(world) and int(world) >= 1 else None
    return Derived(job, groups, service, namespace, peers, index, sources, world_size)


def _shape(i: Inputs, job: str) -> _Shape | None:
    env = i.environ
    if "TF_CONFIG" in env:
        return _tf_config(i, job)
    if env.get("PET_NNODES"):
        master = bool(env.get("PET_MASTER_ADDR") or env.get("MASTER_ADDR"))
        return _counted(i, "PET_NNODES", "PET_NODE_RANK", master)
    if env.get("PADDLE_NNODES"):
        if ps := [v for v in ("PADDLE_SERVER_NUM", "PADDLE_TRAINER_NUM") if env.get(v)]:
            i.p.add(
                None,
                f"{ps[0]}: a PaddleJob with a Master (parameter-server mode) does not tell a "
                "pod how many servers there are; peer-agent supports collective PaddleJobs "
                "(Worker only)",
            )
            return None
        return _counted(i, "PADDLE_NNODES", None, False)
    if env.get("NUM_PROCESSES"):
        return _counted(i, "NUM_PROCESSES", "PROCESS_ID", False)
    if env.get("WORLD_SIZE") and env.get("MASTER_ADDR"):
        return _counted(i, "WORLD_SIZE", "RANK", True)
    i.p.add(
        OPT["peers"],
        "none of the Training Operator's variables (PET_NNODES, WORLD_SIZE, NUM_PROCESSES, "
        "PADDLE_NNODES, TF_CONFIG) is set: it sets them in containers, never in init "
        "containers; run peer-agent in the training container (peer-agent run -- ...)",
    )
    return None


def _counted(i: Inputs, var: str, rank_var: str | None, master: bool) -> _Shape | None:
    """``var`` pods: the master first when there is one, then workers."""
    peers = _count(i, var)
    rank = None
    if rank_var is not None and (text := i.environ.get(rank_var, "").strip()):
        if not is_number(text):
            i.p.add(None, f"{rank_var}: not a non-negative integer: {text!r}")
            return None
        rank = (rank_var, int(text))
    if peers is None:
        return None
    lead = (ReplicaType("master", 1),) if master else ()
    low, elastic, high = i.environ[var].strip().partition(":")
    count = i.source("peers") if elastic and low != high else Source(Origin.VARIABLE, var)
    return _Shape((*lead, ReplicaType("worker", peers - len(lead))), rank, count=count)


def _count(i: Inputs, var: str) -> int | None:
    """The pod count the operator gives: ``N``, or an elastic PyTorchJob's ``MIN:MAX`` when
    both are the same; ``--peers`` must agree, and is needed for a range."""
    text, given = i.environ[var].strip(), i.get("peers")
    low, elastic, high = text.partition(":")
    if elastic and low == high:
        text = low
    if is_number(text) and int(text) >= 1:
        if given is not None and given != text:
            i.p.add(OPT["peers"], f"{given!r} differs from {text}, the {var} the operator set")
        return int(text)
    if not elastic:
        i.p.add(OPT["peers"], f"not a positive integer: {text!r}", also=var)
        return None
    if given is None:
        i.p.add(
            OPT["peers"],
            f"{var} is the elastic range {text!r}: give the number of pods the barrier waits for",
        )
        return None
    return i.count("peers", var, minimum=1)


def _tf_config(i: Inputs, job: str) -> _Shape | None:
    """TF_CONFIG lists every replica's ``<job>-<type>-<i>.<ns>.svc[.<zone>]:<port>``."""
    try:
        config = json.loads(i.environ["TF_CONFIG"])
        cluster = dict(config["cluster"])
        task, index = str(config["task"]["type"]), int(config["task"]["index"])
    except (ValueError, TypeError, KeyError, AttributeError):
        i.p.add(None, "TF_CONFIG: not the operator's {cluster: {type: [host:port, ...]}, task}")
        return None
    if not all(isinstance(hosts, list) for hosts in cluster.values()):
        i.p.add(
            None,
            "TF_CONFIG lists only part of the cluster (enableDynamicWorker): peer-agent needs "
            "every replica; turn it off, or list the peers in a file (--peers-from)",
        )
        return None
    groups = ReplicaGroups(job, tuple(ReplicaType(str(t), len(h)) for t, h in cluster.items()))
    hosts = [str(host).split(":")[0] for listed in cluster.values() for host in listed]
    for n, host in enumerate(hosts):
        if host.split(".")[0] != groups.hostname(n):
            i.p.add(None, f"TF_CONFIG: {host!r} is not {groups.hostname(n)} (--job-name?)")
            return None
    labels = hosts[0].split(".") if hosts else []
    namespace = labels[1] if len(labels) > 2 and labels[2] == "svc" else None
    rank = groups.rank(task, index)
    ranked = None if rank is None else ("TF_CONFIG", rank)
    return _Shape(groups.types, ranked, namespace, Source(Origin.VARIABLE, "TF_CONFIG"))
