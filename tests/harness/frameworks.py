"""What each batch controller makes of its resource: the Services and pods it creates, named and
wired as its code does (checked against the controllers' sources; see FIELD-NOTES.md).

- **JobSet** (``jobset.x-k8s.io``): a child Indexed Job ``<js>-<rjob>-<j>`` per replica, pods in
  subdomain ``spec.network.subdomain`` (default: the JobSet's name), one headless Service of that
  name with **no ports** and ``publishNotReadyAddresses`` true unless set; jobset labels and
  annotations on every pod (Downward API); no environment of its own.
- **Kubeflow Trainer** (``TrainJob`` + ``ClusterTrainingRuntime``): the runtime's JobSet named
  after the TrainJob, ``node`` Job with ``numNodes`` pods; ``PET_*`` into the ``node`` container
  and into ``mlPolicy.torch.envInjection`` targets; ``trainer.command`` replaces ``node``'s.
- **LeaderWorkerSet**: per group ``g`` a leader ``<lws>-<g>`` and workers ``<lws>-<g>-<w>``,
  subdomain ``<lws>`` (Shared) or ``<lws>-<g>`` (UniquePerReplica), a Service per subdomain
  publishing not-ready pods; ``LWS_LEADER_ADDRESS`` (``<leader>.<subdomain>.<ns>``),
  ``LWS_GROUP_SIZE``, ``LWS_WORKER_INDEX`` in every container. One Job per group models it.
- **Kubeflow Training Operator v1** (``PyTorchJob``): see ``training_operator.py``.
- **MPI Operator** (``MPIJob`` v2beta1): workers ``<job>-worker-<i>``, launcher
  ``<job>-launcher``, Service ``<job>`` publishing not-ready pods only with
  ``runLauncherAsWorker``; ``/etc/mpi/hostfile`` (``<host>.<job>.<ns>.svc slots=N``) in the
  launcher's first container. Images are not modelled: a worker's sshd is a plain TCP listener
  on port 22, the launcher's ``mpirun`` prints the hostfile.
- **Volcano** (``batch.volcano.sh`` Job, svc plugin): pods ``<job>-<task>-<i>`` in subdomain
  ``<job>``, a Service ``<job>`` (not-ready pods only with ``--publish-not-ready-addresses``),
  ``/etc/volcano/<task>.host`` and ``VC_<TASK>_HOSTS`` / ``VC_<TASK>_NUM`` in every container.
"""

from __future__ import annotations

import copy
import sys
import uuid
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from tests.harness.training_operator import pytorchjob
from tests.harness.workload import (
    Container,
    Doc,
    EnvVar,
    Job,
    Service,
    WorkloadError,
    _job,
    _template,
)

__all__ = ["translate"]

# Stands in for sshd: accepts on port 22 and hangs up, until the pod is stopped.
SSHD_STANDIN = (
    sys.executable,
    "-c",
    "import socket\n"
    "s = socket.create_server(('0.0.0.0', 22), reuse_port=True)\n"
    "while True:\n    s.accept()[0].close()\n",
)


def translate(docs: Sequence[Doc]) -> tuple[tuple[Service, ...], tuple[Job, ...]]:
    services: list[Service] = []
    jobs: list[Job] = []
    runtimes = {d["metadata"]["name"]: d for d in docs if d.get("kind") == "ClusterTrainingRuntime"}
    for doc in docs:
        kind, group = doc.get("kind"), str(doc.get("apiVersion", "")).split("/")[0]
        made: tuple[list[Service], list[Job]] | None = None
        if kind == "JobSet":
            made = jobset(doc)
        elif kind == "TrainJob":
            made = trainjob(doc, runtimes)
        elif kind == "LeaderWorkerSet":
            made = leaderworkerset(doc)
        elif kind == "PyTorchJob":
            made = pytorchjob(doc)
        elif kind == "MPIJob":
            made = mpijob(doc)
        elif kind == "Job" and group == "batch.volcano.sh":
            made = volcano_job(doc)
        if made is not None:
            services += made[0]
            jobs += made[1]
    return tuple(services), tuple(jobs)


def _meta(doc: Doc) -> tuple[str, str]:
    return str(doc["metadata"]["name"]), str(doc["metadata"].get("namespace", "default"))


def _headless(name: str, ns: str, not_ready: bool, selector: dict[str, str]) -> Service:
    return Service(name, ns, True, not_ready, tuple(selector.items()), ())


def _inject(job: Job, env: Sequence[EnvVar], names: set[str] | None = None) -> Job:
    """Put ``env`` in front of the named containers' own (every container when None)."""

    def one(c: Container) -> Container:
        if names is not None and c.name not in names:
            return c
        return replace(c, env=(*env, *(e for e in c.env if e.name not in {v.name for v in env})))

    t = job.template
    return replace(
        job,
        template=replace(
            t,
            init_containers=tuple(one(c) for c in t.init_containers),
            containers=tuple(one(c) for c in t.containers),
        ),
    )


def _child(
    name: str, ns: str, job_spec: dict[str, Any], subdomain: str, labels: dict[str, str]
) -> Job:
    spec = copy.deepcopy(job_spec)
    pod = spec.setdefault("template", {})
    pod.setdefault("spec", {})["subdomain"] = subdomain
    meta = pod.setdefault("metadata", {})
    meta["labels"] = {**(meta.get("labels") or {}), **labels}
    return _job({"metadata": {"name": name, "namespace": ns}, "spec": spec})


def jobset(doc: Doc) -> tuple[list[Service], list[Job]]:
    js, ns = _meta(doc)
    spec = doc["spec"]
    network = spec.get("network") or {}
    subdomain = str(network.get("subdomain") or js)
    not_ready = bool(network.get("publishNotReadyAddresses", True))
    uid = str(uuid.uuid4())
    rjobs = spec["replicatedJobs"]
    global_replicas = sum(int(r.get("replicas", 1)) for r in rjobs)
    jobs, global_index = [], 0
    for rjob in rjobs:
        replicas = int(rjob.get("replicas", 1))
        for j in range(replicas):
            keys = {
                "jobset.sigs.k8s.io/jobset-name": js,
                "jobset.sigs.k8s.io/jobset-uid": uid,
                "jobset.sigs.k8s.io/replicatedjob-name": str(rjob["name"]),
                "jobset.sigs.k8s.io/replicatedjob-replicas": str(replicas),
                "jobset.sigs.k8s.io/global-replicas": str(global_replicas),
                "jobset.sigs.k8s.io/job-index": str(j),
                "jobset.sigs.k8s.io/job-global-index": str(global_index),
            }
            job = _child(f"{js}-{rjob['name']}-{j}", ns, rjob["template"]["spec"], subdomain, keys)
            jobs.append(replace(job, annotations=tuple(keys.items())))
            global_index += 1
    selector = {"jobset.sigs.k8s.io/jobset-name": js}
    return [_headless(subdomain, ns, not_ready, selector)], jobs


def trainjob(doc: Doc, runtimes: dict[str, Doc]) -> tuple[list[Service], list[Job]]:
    name = str(doc["metadata"]["name"])
    spec = doc["spec"]
    runtime = runtimes.get(spec["runtimeRef"]["name"])
    if runtime is None:
        raise WorkloadError(f"TrainJob {name}: runtime {spec['runtimeRef']['name']} not given")
    policy = runtime["spec"].get("mlPolicy") or {}
    trainer = spec.get("trainer") or {}
    nodes = int(trainer.get("numNodes", policy.get("numNodes", 1)))
    jobset_spec = copy.deepcopy(runtime["spec"]["template"]["spec"])
    for rjob in jobset_spec["replicatedJobs"]:
        if rjob["name"] == "node":
            job_spec = rjob["template"]["spec"]
            job_spec.update(completions=nodes, parallelism=nodes, completionMode="Indexed")
            if trainer.get("command"):
                for c in job_spec["template"]["spec"]["containers"]:
                    if c["name"] == "node":
                        c["command"] = trainer["command"]
    services, jobs = jobset({"metadata": doc["metadata"], "spec": jobset_spec})
    pet = (
        EnvVar("PET_NNODES", str(nodes)),
        EnvVar("PET_NPROC_PER_NODE", "1"),
        EnvVar(
            "PET_NODE_RANK",
            field_path="metadata.annotations['batch.kubernetes.io/job-completion-index']",
        ),
        EnvVar("PET_MASTER_ADDR", f"{name}-node-0-0.{name}"),
        EnvVar("PET_MASTER_PORT", "29500"),
    )
    targets = ((policy.get("torch") or {}).get("envInjection") or {}).get("targets") or ()
    out = []
    for job in jobs:
        if job.name.startswith(f"{name}-node-"):
            names = {"node"} | {
                c for t in targets if t["jobName"] == "node" for c in t["containerNames"]
            }
            job = _inject(job, pet, names)
        out.append(job)
    return services, out


def leaderworkerset(doc: Doc) -> tuple[list[Service], list[Job]]:
    lws, ns = _meta(doc)
    spec = doc["spec"]
    template = spec["leaderWorkerTemplate"]
    if template.get("leaderTemplate"):
        raise WorkerTemplateOnly(lws)
    size = int(template.get("size", 1))
    policy = (spec.get("networkConfig") or {}).get("subdomainPolicy", "Shared")
    services: dict[str, Service] = {}
    jobs = []
    for g in range(int(spec.get("replicas", 1))):
        leader = f"{lws}-{g}"
        subdomain = lws if policy == "Shared" else leader
        selector = {"leaderworkerset.sigs.k8s.io/name": lws}
        if policy != "Shared":
            selector["leaderworkerset.sigs.k8s.io/group-index"] = str(g)
        services.setdefault(subdomain, _headless(subdomain, ns, True, selector))
        pod = copy.deepcopy(template["workerTemplate"])
        pod.setdefault("spec", {})["subdomain"] = subdomain
        job = Job(
            name=leader,
            namespace=ns,
            completions=size,
            parallelism=size,
            completion_mode="Indexed",
            pod_replacement_policy="Failed",
            backoff_limit=None,
            template=_template(pod),
            hostnames=(leader, *(f"{leader}-{w}" for w in range(1, size))),
            completion_index_env=False,
            index_label="leaderworkerset.sigs.k8s.io/worker-index",
        )
        lws_env = (
            EnvVar("LWS_LEADER_ADDRESS", f"{leader}.{subdomain}.{ns}"),
            EnvVar("LWS_GROUP_SIZE", str(size)),
            EnvVar(
                "LWS_WORKER_INDEX",
                field_path="metadata.labels['leaderworkerset.sigs.k8s.io/worker-index']",
            ),
        )
        jobs.append(_inject(job, lws_env))
    return list(services.values()), jobs


class WorkerTemplateOnly(WorkloadError):
    def __init__(self, name: str) -> None:
        super().__init__(f"LeaderWorkerSet {name}: only a workerTemplate (no leaderTemplate)")


def _pods(name: str, ns: str, template: Doc, hostnames: tuple[str, ...], subdomain: str) -> Job:
    pod = dict(copy.deepcopy(template))  # a Doc is a read-only Mapping: a dict to edit
    pod.setdefault("spec", {})["subdomain"] = subdomain
    n = len(hostnames)
    return Job(name, ns, n, n, "Indexed", "Failed", None, _template(pod), hostnames, False)


def mpijob(doc: Doc) -> tuple[list[Service], list[Job]]:
    name, ns = _meta(doc)
    spec = doc["spec"]
    specs = spec["mpiReplicaSpecs"]
    slots = int(spec.get("slotsPerWorker", 1))
    workers = int(specs["Worker"].get("replicas", 1))
    worker_names = tuple(f"{name}-worker-{i}" for i in range(workers))
    hostfile = "".join(f"{w}.{name}.{ns}.svc slots={slots}\n" for w in worker_names)
    worker = _pods(f"{name}-worker", ns, specs["Worker"]["template"], worker_names, name)
    sshd = replace(worker.template.containers[0], command=SSHD_STANDIN, args=())
    worker = replace(
        worker,
        template=replace(worker.template, containers=(sshd, *worker.template.containers[1:])),
    )
    launcher = _pods(
        f"{name}-launcher", ns, specs["Launcher"]["template"], (f"{name}-launcher",), name
    )
    first = launcher.template.containers[0]
    mpirun = replace(
        first,
        command=("sh", "-c", 'echo "mpirun starts on $(wc -l < /etc/mpi/hostfile) workers"'),
        args=(),
        mounts=(*first.mounts, ("mpi-job-config", "/etc/mpi")),
    )
    launcher = replace(
        launcher,
        template=replace(
            launcher.template,
            containers=(mpirun, *launcher.template.containers[1:]),
            files=(("mpi-job-config", (("hostfile", hostfile),)),),
        ),
    )
    role = [EnvVar("K_MPI_JOB_ROLE", "launcher")]
    launcher = _inject(launcher, role, {first.name})
    not_ready = bool(spec.get("runLauncherAsWorker", False))
    selector = {"training.kubeflow.org/job-name": name}
    return [_headless(name, ns, not_ready, selector)], [worker, launcher]


def volcano_job(doc: Doc) -> tuple[list[Service], list[Job]]:
    name, ns = _meta(doc)
    spec = doc["spec"]
    args = (spec.get("plugins") or {}).get("svc") or []
    not_ready = "--publish-not-ready-addresses=true" in args
    tasks = spec["tasks"]
    hosts = {
        str(t["name"]): [f"{name}-{t['name']}-{i}" for i in range(int(t.get("replicas", 1)))]
        for t in tasks
    }
    files = tuple(
        (f"{task}.host", "\n".join(f"{h}.{name}" for h in hs)) for task, hs in hosts.items()
    )
    env = []
    for task, hs in hosts.items():
        key = task.replace("-", "_").upper()
        env += [
            EnvVar(f"VC_{key}_HOSTS", ",".join(f"{h}.{name}" for h in hs)),
            EnvVar(f"VC_{key}_NUM", str(len(hs))),
        ]
    jobs = []
    for task in tasks:
        job = _pods(
            f"{name}-{task['name']}", ns, task["template"], tuple(hosts[task["name"]]), name
        )
        t = job.template

        def mounted(c: Container) -> Container:
            return replace(c, mounts=(*c.mounts, ("volcano-hosts", "/etc/volcano")))

        t = replace(
            t,
            init_containers=tuple(mounted(c) for c in t.init_containers),
            containers=tuple(mounted(c) for c in t.containers),
            files=(("volcano-hosts", files),),
        )
        jobs.append(_inject(replace(job, template=t), env))
    selector = {"volcano.sh/job-name": name}
    return [_headless(name, ns, not_ready, selector)], jobs
