"""`peer-agent lint` rules for the batch frameworks: JobSet, LeaderWorkerSet, Kubeflow Trainer,
MPI Operator and Volcano. Each controller names pods and publishes them its own way; these rules
check what the agent will derive from that (pod names within 63 characters, not-ready pods
published, ``PEER_AGENT_*`` consistent with the shape) before anything is applied.

Pure, and as forgiving of malformed input as :mod:`agent.lint.rules`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from agent.lint.agent_use import AgentUse, agent_use
from agent.lint.rules import Finding, lint_objects
from agent.topology import is_dns_label
from agent.topology_derive import parse_replicated_jobs

__all__ = ["FRAMEWORK_KINDS", "lint_all", "lint_framework"]

Obj = dict[str, Any]
Report = Callable[..., Finding]
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
    }
)


def _map(x: object) -> dict[Any, Any]:
    return x if isinstance(x, dict) else {}


def _list(x: object) -> list[Any]:
    return x if isinstance(x, list) else []


def _int(x: object, default: int) -> int:
    return x if isinstance(x, int) and not isinstance(x, bool) else default


def _name(obj: Obj) -> str:
    name = _map(obj.get("metadata")).get("name")
    return name if isinstance(name, str) else ""


@dataclass(frozen=True)
class _Agent:
    path: str
    spec: dict[Any, Any]
    init: bool
    use: AgentUse


def _agents(pod: dict[Any, Any], base: str) -> list[_Agent]:
    found = []
    for key, init in (("initContainers", True), ("containers", False)):
        for i, raw in enumerate(_list(pod.get(key))):
            c = _map(raw)
            use = agent_use(c)
            if use is not None:
                label = c.get("name") if isinstance(c.get("name"), str) else str(i)
                found.append(_Agent(f"{base}.{key}[{label}]", c, init, use))
    return found


def _long_name(report: Report, field: str, hostname: str, what: str) -> Iterator[Finding]:
    if hostname and not is_dns_label(hostname):
        yield report(
            field,
            f"the pod hostname {hostname!r} ({what}) is not a DNS-1123 label of at most 63 "
            "characters: the controller's pods are rejected or get no DNS name",
            "shorten the name",
        )


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

    spec = _map(obj.get("spec"))
    if kind == "JobSet":
        yield from _jobset(_name(obj), spec, "spec", report)
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


def _shape(rjob: dict[Any, Any]) -> tuple[int, int]:
    job = _map(_map(rjob.get("template")).get("spec"))
    pods = _int(job.get("parallelism"), _int(job.get("completions"), 1))
    return _int(rjob.get("replicas"), 1), pods


def _jobset(name: str, spec: Obj, at: str, report: Report) -> Iterator[Finding]:
    rjobs = [_map(r) for r in _list(spec.get("replicatedJobs"))]
    network = _map(spec.get("network"))
    want = ",".join(f"{r.get('name')}={'x'.join(map(str, _shape(r)))}" for r in rjobs)
    for i, rjob in enumerate(rjobs):
        replicas, pods = _shape(rjob)
        job = _map(_map(rjob.get("template")).get("spec"))
        base = f"{at}.replicatedJobs[{rjob.get('name', i)}].template.spec"
        last = f"{name}-{rjob.get('name')}-{replicas - 1}-{pods - 1}"
        yield from _long_name(report, "metadata.name", last, f"replicatedJob {rjob.get('name')}")
        agents = _agents(_map(_map(job.get("template")).get("spec")), f"{base}.template.spec")
        if agents and job.get("completionMode") != "Indexed":
            yield report(
                f"{base}.completionMode",
                "is not Indexed: the pods get no -<index> hostname, so peers cannot be named",
                "set completionMode: Indexed",
            )
        if agents and network.get("enableDNSHostnames") is False:
            yield report(
                f"{at}.network.enableDNSHostnames",
                "is false: JobSet makes no Service and pods get no DNS names",
                "remove it (JobSet's default is true)",
            )
        if any(a.init for a in agents) and network.get("publishNotReadyAddresses") is False:
            yield report(
                f"{at}.network.publishNotReadyAddresses",
                "is false, but peer-agent runs before the pods can be Ready: no pod is ever "
                "published, so the barrier waits forever",
                "remove it (JobSet's default is true)",
            )
        for agent in agents:
            yield from _jobset_agent(agent, str(rjob.get("name")), rjobs, want, report)


def _jobset_agent(
    agent: _Agent, own: str, rjobs: list[dict[Any, Any]], want: str, report: Report
) -> Iterator[Finding]:
    topology, _ = agent.use.setting("--topology", "PEER_AGENT_TOPOLOGY")
    if topology == "indexed-job":
        return  # a barrier over the pod's own child Job: --peers is the Job's count
    text, where = agent.use.setting("--replicated-jobs", "PEER_AGENT_REPLICATED_JOBS")
    field = f"{agent.path}.{where}"
    if text is None:
        if dict(agent.use.env).get("PEER_AGENT_REPLICATED_JOBS") is None:
            yield report(
                f"{agent.path}.env",
                "JobSet gives a pod no pod count: peer-agent needs the shape of the barrier",
                f'add env PEER_AGENT_REPLICATED_JOBS: "{want}" (or only this replicatedJob\'s '
                "entry, for a barrier over it alone)",
            )
        return
    try:
        listed = parse_replicated_jobs(text)
    except ValueError as exc:
        yield report(field, str(exc), f'e.g. "{want}"')
        return
    shapes = {str(r.get("name")): _shape(r) for r in rjobs}
    order = [str(r.get("name")) for r in rjobs]
    for job in listed:
        if job.name not in shapes:
            yield report(field, f"lists {job.name!r}, which is not a replicatedJob", f'"{want}"')
        elif shapes[job.name] != (job.replicas, job.pods):
            r, p = shapes[job.name]
            yield report(
                field,
                f"says {job.name}={job.replicas}x{job.pods}, but the spec has {r} replicas of "
                f"{p} pods: the barrier would wait for pods that never come, or leave early",
                f"{job.name}={r}x{p}",
            )
    names = [j.name for j in listed if j.name in shapes]
    if names != sorted(names, key=order.index):
        yield report(
            field, "lists replicatedJobs out of spec order: ranks would differ", f'"{want}"'
        )
    if own not in [j.name for j in listed]:
        yield report(field, f"does not list this pod's replicatedJob {own!r}", f'"{want}"')
    uid_path = agent.use.field_path("PEER_AGENT_JOB_UID") or ""
    spans = sum(shapes.get(j.name, (1, 1))[0] for j in listed)
    if "controller-uid" in uid_path and spans > 1:
        yield report(
            f"{agent.path}.env[PEER_AGENT_JOB_UID]",
            "takes the child Job's controller-uid, but the barrier spans several child Jobs, "
            "each with its own uid: they would ignore each other",
            "take metadata.labels['jobset.sigs.k8s.io/jobset-uid'] instead",
        )


def _lws(name: str, spec: Obj, report: Report) -> Iterator[Finding]:
    template = _map(spec.get("leaderWorkerTemplate"))
    size = _int(template.get("size"), 1)
    last = f"{name}-{_int(spec.get('replicas'), 1) - 1}-{size - 1}"
    yield from _long_name(report, "metadata.name", last, "the last group's last worker")
    at = "spec.leaderWorkerTemplate"
    workers = _agents(
        _map(_map(template.get("workerTemplate")).get("spec")), f"{at}.workerTemplate.spec"
    )
    if "leaderTemplate" in template:
        leaders = _agents(
            _map(_map(template.get("leaderTemplate")).get("spec")), f"{at}.leaderTemplate.spec"
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
    torch = _map(_map(spec.get("mlPolicy")).get("torch"))
    targets = _list(_map(torch.get("envInjection")).get("targets"))
    injected = {
        (str(_map(t).get("jobName")), str(c))
        for t in targets
        for c in _list(_map(t).get("containerNames"))
    }
    for i, rjob in enumerate(
        _list(_map(_map(spec.get("template")).get("spec")).get("replicatedJobs"))
    ):
        job_name = str(_map(rjob).get("name", i))
        pod = _map(
            _map(_map(_map(_map(rjob).get("template")).get("spec")).get("template")).get("spec")
        )
        base = f"spec.template.spec.replicatedJobs[{job_name}].template.spec.template.spec"
        for agent in _agents(pod, base):
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
    ref = str(_map(spec.get("runtimeRef")).get("name"))
    runtime = next(
        (
            o
            for _, o in objects
            if o.get("kind") in ("ClusterTrainingRuntime", "TrainingRuntime") and _name(o) == ref
        ),
        {},
    )
    policy = _map(_map(runtime.get("spec")).get("mlPolicy"))
    nodes = _int(_map(spec.get("trainer")).get("numNodes"), _int(policy.get("numNodes"), 1))
    yield from _long_name(report, "metadata.name", f"{name}-node-0-{nodes - 1}", "the last node")


def _mpijob(name: str, spec: Obj, report: Report) -> Iterator[Finding]:
    specs = _map(spec.get("mpiReplicaSpecs"))
    workers = _int(_map(specs.get("Worker")).get("replicas"), 1)
    yield from _long_name(report, "metadata.name", f"{name}-worker-{workers - 1}", "last worker")
    base = "spec.mpiReplicaSpecs.Launcher.template.spec"
    pod = _map(_map(_map(specs.get("Launcher")).get("template")).get("spec"))
    first = _map((_list(pod.get("containers")) or [{}])[0]).get("name")
    for agent in _agents(pod, base):
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
        mounts = {
            (_map(m).get("name"), _map(m).get("mountPath"))
            for m in _list(agent.spec.get("volumeMounts"))
        }
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
    plugins = _map(spec.get("plugins"))
    tasks = [_map(t) for t in _list(spec.get("tasks"))]
    total = sum(_int(t.get("replicas"), 1) for t in tasks)
    for i, task in enumerate(tasks):
        task_name = str(task.get("name", i))
        base = f"spec.tasks[{task_name}].template.spec"
        last = f"{name}-{task_name}-{_int(task.get('replicas'), 1) - 1}"
        yield from _long_name(report, "metadata.name", last, f"task {task_name}")
        agents = _agents(_map(_map(task.get("template")).get("spec")), base)
        if not agents:
            continue
        if "svc" not in plugins:
            yield report(
                "spec.plugins",
                "has no svc plugin: pods get no hostname, no Service and no host files",
                'add plugins: {svc: ["--publish-not-ready-addresses=true"]}',
            )
        elif any(a.init for a in agents) and "--publish-not-ready-addresses=true" not in [
            str(a) for a in _list(plugins.get("svc"))
        ]:
            yield report(
                "spec.plugins.svc",
                "does not publish not-ready pods, but peer-agent runs before the pods can be "
                "Ready: no pod is ever published, so the barrier waits forever",
                'add "--publish-not-ready-addresses=true"',
            )
        if _int(spec.get("minAvailable"), total) < total:
            yield report(
                "spec.minAvailable",
                f"is below the {total} pods: without gang scheduling a partial start holds "
                "the barrier until its timeout",
                f"set minAvailable: {total}",
                "warning",
            )
        known = {f"/etc/volcano/{t.get('name')}.host" for t in tasks}
        for agent in agents:
            peers_from, where = agent.use.setting("--peers-from", "PEER_AGENT_PEERS_FROM")
            if peers_from is None or (
                peers_from.startswith("/etc/volcano/") and peers_from not in known
            ):
                yield report(
                    f"{agent.path}.{where}",
                    f"is {peers_from or 'unset'}: the svc plugin writes /etc/volcano/<task>.host "
                    "for the tasks " + ", ".join(sorted(known)),
                    f"set PEER_AGENT_PEERS_FROM: /etc/volcano/{task_name}.host",
                )
