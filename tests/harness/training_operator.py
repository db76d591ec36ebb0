"""What the Kubeflow Training Operator v1 makes of a ``PyTorchJob`` (``kubeflow.org/v1``), read
from its controller (pkg/controller.v1 at v1.9.0; the same in v1.7 and v1.8).

Replica ``i`` of type ``T`` is a pod ``<job>-<t>-<i>`` with no subdomain, selected by a
headless Service of the same name that does not publish not-ready pods; ``MASTER_ADDR`` and
``PET_MASTER_ADDR`` (``<job>-master-0``), ``MASTER_PORT`` and ``PET_MASTER_PORT`` (the
``pytorch`` container's ``pytorchjob-port``), ``WORLD_SIZE`` (pods x ``nprocPerNode``), ``RANK``
and ``PET_NODE_RANK`` (workers after the master), ``PET_NNODES`` and ``PET_NPROC_PER_NODE`` go
into every container, none into init containers; workers get the operator's ``init-pytorch``
init container (``nslookup <job>-master-0`` until it succeeds, 100 tries 2 s apart). One
single-pod Job per replica models it.

``init-pytorch``'s meaning, "until the master's name resolves", is modelled with ``getent
hosts`` (the pod's resolv.conf and search list): what busybox's ``nslookup`` exits with depends
on its version (the host's 1.35 asks every search domain and fails when one answers NXDOMAIN,
which in a cluster one always does; the operator's default image is ``alpine:3.10``).
"""

from __future__ import annotations

import copy
from dataclasses import replace

from tests.harness.workload import Container, Doc, EnvVar, Job, Service, _template

__all__ = ["pytorchjob"]

# The operator's init container for PyTorchJob workers (pkg/controller.v1/pytorch/initcontainer.go),
# `nslookup` read as what it means there (see above).
INIT_PYTORCH = (
    "err=1;for i in $(seq 100); do if getent hosts {master}; then err=0 && break; fi;"
    "echo waiting for master; sleep 2; done; exit $err"
)


def pytorchjob(doc: Doc) -> tuple[list[Service], list[Job]]:
    name = str(doc["metadata"]["name"])
    ns = str(doc["metadata"].get("namespace", "default"))
    specs = doc["spec"]["pytorchReplicaSpecs"]
    order = [t for t in ("Master", "Worker") if t in specs]
    total = sum(int(specs[t].get("replicas", 1)) for t in order)
    nproc = doc["spec"].get("nprocPerNode")
    services, jobs, rank = [], [], 0
    for rtype in order:
        for i in range(int(specs[rtype].get("replicas", 1))):
            pod_name = f"{name}-{rtype.lower()}-{i}"
            labels = {
                "training.kubeflow.org/operator-name": "pytorchjob-controller",
                "training.kubeflow.org/job-name": name,
                "training.kubeflow.org/replica-type": rtype.lower(),
                "training.kubeflow.org/replica-index": str(i),
            }
            services.append(Service(pod_name, ns, True, False, tuple(labels.items()), ()))
            job = _replica(pod_name, ns, specs[rtype]["template"], labels)
            jobs.append(_into_containers(job, _pytorch_env(doc, total, rank, nproc)))
            rank += 1
    if "Master" in specs:
        init = Container(
            "init-pytorch",
            "alpine:3.10",
            command=("sh", "-c", INIT_PYTORCH.format(master=f"{name}-master-0")),
        )
        jobs = [_with_init(j, init) if "-worker-" in j.name else j for j in jobs]
    return services, jobs


def _replica(pod_name: str, ns: str, template: Doc, labels: dict[str, str]) -> Job:
    """One replica's pod: its own name as hostname, no subdomain, its own Service."""
    pod = dict(copy.deepcopy(template))
    meta = pod.setdefault("metadata", {})
    meta["labels"] = {**(meta.get("labels") or {}), **labels}
    job = Job(pod_name, ns, 1, 1, "Indexed", "Failed", None, _template(pod), (pod_name,), False)
    return replace(job, service=pod_name)


def _pytorch_env(doc: Doc, total: int, rank: int, nproc: str | None) -> tuple[EnvVar, ...]:
    """What pkg/controller.v1/pytorch/envvar.go and master.go set (no elastic policy)."""
    name = str(doc["metadata"]["name"])
    env = [EnvVar("PYTHONUNBUFFERED", "1")]
    if "Master" in doc["spec"]["pytorchReplicaSpecs"]:
        port = str(_pytorch_port(doc["spec"]["pytorchReplicaSpecs"]["Master"]["template"]))
        addr = f"{name}-master-0"
        world = total * (int(nproc) if nproc and nproc.isdigit() else 1)
        env += [EnvVar("MASTER_PORT", port), EnvVar("PET_MASTER_PORT", port)]
        env += [EnvVar("MASTER_ADDR", addr), EnvVar("PET_MASTER_ADDR", addr)]
        env += [EnvVar("WORLD_SIZE", str(world)), EnvVar("RANK", str(rank))]
        env += [EnvVar("PET_NODE_RANK", str(rank))]
    if nproc is not None:
        env.append(EnvVar("PET_NPROC_PER_NODE", str(nproc)))
    return (*env, EnvVar("PET_NNODES", str(total)))


def _pytorch_port(template: Doc) -> int:
    for c in template["spec"]["containers"]:
        if c["name"] == "pytorch":
            for port in c.get("ports") or ():
                if port.get("name") == "pytorchjob-port":
                    return int(port["containerPort"])
    return 23456  # the operator's defaulter adds this port when the container has none


def _into_containers(job: Job, env: tuple[EnvVar, ...]) -> Job:
    """The operator's variables in front of each container's own; init containers get none."""
    names = {e.name for e in env}
    t = job.template
    containers = tuple(
        replace(c, env=(*env, *(e for e in c.env if e.name not in names))) for c in t.containers
    )
    return replace(job, template=replace(t, containers=containers))


def _with_init(job: Job, init: Container) -> Job:
    t = job.template
    return replace(job, template=replace(t, init_containers=(*t.init_containers, init)))
