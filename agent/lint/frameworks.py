"""`peer-agent lint` rules for the batch frameworks: JobSet, LeaderWorkerSet, Kubeflow Trainer,
the Training Operator's v1 jobs, MPI Operator and Volcano. Each controller names pods and
publishes them its own way; these rules check what the agent will derive from that (pod names
within 63 characters, not-ready pods published, ``PEER_AGENT_*`` consistent with the shape)
before anything is applied.

Pure, and as forgiving of malformed input as :mod:`agent.lint.rules`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from agent.lint.common import Report, agents_in, as_int, as_list, as_map, long_name
from agent.lint.finding import Finding
from agent.lint.jobset import lint_jobset
from agent.lint.rules import lint_objects
from agent.lint.training_operator import REPLICA_SPECS, lint_training_operator

__all__ = ["FRAMEWORK_KINDS", "lint_all", "lint_framework"]

Obj = dict[str, Any]
#: (kind, API group) this module checks
FRAMEWORK_KINDS = frozenset(
    {
        ("JobSet", "jobset.x-k8s.io"),
        ("LeaderWorkerSet", "leaderworkerset.x-k8s.io"),
        ("TrainJob", "trainer.kubeflow.org"),
        ("ClusterTrainingRuntime", "trainer.kubeflow.org"),
        ("TrainingRuntime", "trainer.kubeflow.org"),
        ("MPIJob", "kubeflow.org"),
        ("Job", "batch.volcano.sh"),
        *((kind, "kubeflow.org") for kind in REPLICA_SPECS),
    }
)


def _name(obj: Obj) -> str:
    name = as_map(obj.get("metadata")).get("name")
    return name if isinstance(name, str) else ""


def lint_all(objects: list[tuple[str, Obj]]) -> list[Finding]:
    """Jobs and Services (:mod:`agent.lint.rules`), then each framework's resources."""
    findings = lint_objects(objects)
    for file, obj in objects:
        findings.extend(lint_framework(file, obj, objects))
    return list(dict.fromkeys(findings))


def lint_framework(file: str, obj: Obj, objects: list[tuple[str, Obj]]) -> Iterator[Finding]:
    kind = obj.get("kind")
    group = str(obj.get("apiVersion", "")).split("/")[0]
    ref = f"{kind}/{_name(obj) or '<unnamed>'}"

    def report(field: str, message: str, fix: str, severity: str = "error") -> Finding:
        return Finding(file, ref, field, message, fix, severity)

    spec = as_map(obj.get("spec"))
    if kind == "JobSet":
        yield from lint_jobset(_name(obj), spec, report)
    elif kind == "LeaderWorkerSet":
        yield from _lws(_name(obj), spec, report)
    elif kind in ("ClusterTrainingRuntime", "TrainingRuntime"):
        yield from _runtime(spec, report)
    elif kind == "TrainJob":
        yield from _trainjob(_name(obj), spec, objects, report)
    elif kind == "MPIJob":
        yield from _mpijob(_name(obj), spec, report)
    elif kind == "Job" and group == "batch.volcano.sh":
        yield from _volcano(_name(obj), spec, report)
    elif isinstance(kind, str) and kind in REPLICA_SPECS and group == "kubeflow.org":
        yield from lint_training_operator(kind, _name(obj), spec, report)


def _lws(name: str, spec: Obj, report: Report) -> Iterator[Finding]:
    template = as_map(spec.get("leaderWorkerTemplate"))
    size = as_int(template.get("size"), 1)
    last = f"{name}-{as_int(spec.get('replicas'), 1) - 1}-{size - 1}"
    yield from long_name(report, "metadata.name", last, "the last group's last worker")
    at = "spec.leaderWorkerTemplate"
    workers = agents_in(
        as_map(as_map(template.get("workerTemplate")).get("spec")), f"{at}.workerTemplate.spec"
    )
    if "leaderTemplate" in template:
        leaders = agents_in(
            as_map(as_map(template.get("leaderTemplate")).get("spec")), f"{at}.leaderTemplate.spec"
        )
        if bool(leaders) != bool(workers):
            yield report(
                f"{at}.{'leaderTemplate' if workers else 'workerTemplate'}",
                "runs no peer-agent, but the other template does: the group's barrier waits "
                "for every pod, leader included, for ever",
                "run peer-agent in the leader and in the workers, or in neither",
            )
        workers += leaders
    for agent in workers:
        peers, where = agent.use.setting("--peers", "PEER_AGENT_PEERS")
        if peers is not None and peers != str(size):
            yield report(
                f"{agent.path}.{where}",
                f"says {peers} peers, but the group size is {size}",
                "remove it: LeaderWorkerSet injects LWS_GROUP_SIZE",
            )


def _runtime(spec: Obj, report: Report) -> Iterator[Finding]:
    torch = as_map(as_map(spec.get("mlPolicy")).get("torch"))
    targets = as_list(as_map(torch.get("envInjection")).get("targets"))
    injected = {
        (str(as_map(t).get("jobName")), str(c))
        for t in targets
        for c in as_list(as_map(t).get("containerNames"))
    }
    for i, rjob in enumerate(
        as_list(as_map(as_map(spec.get("template")).get("spec")).get("replicatedJobs"))
    ):
        job_name = str(as_map(rjob).get("name", i))
        pod = as_map(
            as_map(as_map(as_map(as_map(rjob).get("template")).get("spec")).get("template")).get(
                "spec"
            )
        )
        base = f"spec.template.spec.replicatedJobs[{job_name}].template.spec.template.spec"
        for agent in agents_in(pod, base):
            container = str(agent.spec.get("name"))
            if container == "node" or (job_name, container) in injected:
                continue
            yield report(
                agent.path,
                "runs peer-agent, but Trainer injects PET_* only into the 'node' container, so "
                "it cannot tell the node count, its rank or the master",
                f"add to spec.mlPolicy.torch.envInjection.targets: {{jobName: {job_name}, "
                f"containerNames: [{container}]}}",
            )


def _trainjob(
    name: str, spec: Obj, objects: list[tuple[str, Obj]], report: Report
) -> Iterator[Finding]:
    ref = str(as_map(spec.get("runtimeRef")).get("name"))
    runtime = next(
        (
            o
            for _, o in objects
            if o.get("kind") in ("ClusterTrainingRuntime", "TrainingRuntime") and _name(o) == ref
        ),
        {},
    )
    policy = as_map(as_map(runtime.get("spec")).get("mlPolicy"))
    nodes = as_int(as_map(spec.get("trainer")).get("numNodes"), as_int(policy.get("numNodes"), 1))
    yield from long_name(report, "metadata.name", f"{name}-node-0-{nodes - 1}", "the last node")


def _mpijob(name: str, spec: Obj, report: Report) -> Iterator[Finding]:
    specs = as_map(spec.get("mpiReplicaSpecs"))
    workers = as_int(as_map(specs.get("Worker")).get("replicas"), 1)
    yield from long_name(report, "metadata.name", f"{name}-worker-{workers - 1}", "last worker")
    base = "spec.mpiReplicaSpecs.Launcher.template.spec"
    pod = as_map(as_map(as_map(specs.get("Launcher")).get("template")).get("spec"))
    first = as_map((as_list(pod.get("containers")) or [{}])[0]).get("name")
    for agent in agents_in(pod, base):
        peers_from, _ = agent.use.setting("--peers-from", "PEER_AGENT_PEERS_FROM")
        probe, where = agent.use.setting("--probe", "PEER_AGENT_PROBE")
        if peers_from is None:
            yield report(
                f"{agent.path}.env",
                "the workers run sshd, not peer-agent: the launcher must wait one-sided for "
                "the hosts of the operator's hostfile",
                "add env PEER_AGENT_PEERS_FROM: /etc/mpi/hostfile and PEER_AGENT_PROBE: tcp:22",
            )
        if probe is None or not probe.startswith("tcp:"):
            yield report(
                f"{agent.path}.{where}",
                f"probe is {probe or 'tcp (the agent port)'}: workers running only sshd never "
                "answer peer-agent's hello",
                "set PEER_AGENT_PROBE: tcp:22 (sshd's port)",
            )
        barrier, where = agent.use.setting("--barrier", "PEER_AGENT_BARRIER")
        if spec.get("runLauncherAsWorker") is True and barrier != "none":
            yield report(
                f"{agent.path}.{where}",
                "runLauncherAsWorker lists the launcher in the hostfile, so peer-agent finds "
                "itself among the peers and would hold a barrier with workers that run no agent",
                "set PEER_AGENT_BARRIER: none",
            )
        mounts = [
            (as_map(m).get("name"), as_map(m).get("mountPath"))
            for m in as_list(agent.spec.get("volumeMounts"))
        ]
        reads_config = (peers_from or "").startswith("/etc/mpi/")
        if (
            reads_config
            and (agent.init or agent.spec.get("name") != first)
            and (("mpi-job-config", "/etc/mpi") not in mounts)
        ):
            yield report(
                f"{agent.path}.volumeMounts",
                "does not mount the operator's ConfigMap: the operator mounts /etc/mpi into "
                "the launcher's first container only, so the hostfile is missing here",
                "add volumeMounts: [{name: mpi-job-config, mountPath: /etc/mpi}]",
            )


def _volcano(name: str, spec: Obj, report: Report) -> Iterator[Finding]:
    plugins = as_map(spec.get("plugins"))
    tasks = [as_map(t) for t in as_list(spec.get("tasks"))]
    total = sum(as_int(t.get("replicas"), 1) for t in tasks)
    for i, task in enumerate(tasks):
        task_name = str(task.get("name", i))
        base = f"spec.tasks[{task_name}].template.spec"
        last = f"{name}-{task_name}-{as_int(task.get('replicas'), 1) - 1}"
        yield from long_name(report, "metadata.name", last, f"task {task_name}")
        agents = agents_in(as_map(as_map(task.get("template")).get("spec")), base)
        if not agents:
            continue
        if "svc" not in plugins:
            yield report(
                "spec.plugins",
                "has no svc plugin: pods get no hostname, no Service and no host files",
                'add plugins: {svc: ["--publish-not-ready-addresses=true"]}',
            )
        elif any(a.init for a in agents) and "--publish-not-ready-addresses=true" not in [
            str(a) for a in as_list(plugins.get("svc"))
        ]:
            yield report(
                "spec.plugins.svc",
                "does not publish not-ready pods, but peer-agent runs before the pods can be "
                "Ready: no pod is ever published, so the barrier waits forever",
                'add "--publish-not-ready-addresses=true"',
            )
        if as_int(spec.get("minAvailable"), total) < total:
            yield report(
                "spec.minAvailable",
                f"is below the {total} pods: without gang scheduling a partial start holds "
                "the barrier until its timeout",
                f"set minAvailable: {total}",
                "warning",
            )
        known = {f"/etc/volcano/{t.get('name')}.host" for t in tasks}
        no_env = "--inject-hosts-env=false" in [str(a) for a in as_list(plugins.get("svc"))]
        for agent in agents:
            peers_from, where = agent.use.setting("--peers-from", "PEER_AGENT_PEERS_FROM")
            wrong_file = peers_from is not None and peers_from.startswith("/etc/volcano/")
            if (peers_from is None and no_env) or (wrong_file and peers_from not in known):
                yield report(
                    f"{agent.path}.{where}",
                    f"is {peers_from or 'unset'} (and the svc plugin injects no VC_*_HOSTS): "
                    "the plugin writes /etc/volcano/<task>.host for the tasks "
                    + ", ".join(sorted(known)),
                    f"set PEER_AGENT_PEERS_FROM: /etc/volcano/{task_name}.host",
                )
