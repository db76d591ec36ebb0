"""`peer-agent lint` rules for JobSet: the shape peer-agent is told against the spec."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from agent.lint.common import Agent, Report, agents_in, as_int, as_list, as_map, long_name
from agent.lint.finding import Finding
from agent.topology.jobs import parse_replicated_jobs

__all__ = ["lint_jobset"]


def _shape(rjob: dict[Any, Any]) -> tuple[int, int]:
    job = as_map(as_map(rjob.get("template")).get("spec"))
    pods = as_int(job.get("parallelism"), as_int(job.get("completions"), 1))
    return as_int(rjob.get("replicas"), 1), pods


def lint_jobset(name: str, spec: dict[str, Any], report: Report) -> Iterator[Finding]:
    at = "spec"
    rjobs = [as_map(r) for r in as_list(spec.get("replicatedJobs"))]
    network = as_map(spec.get("network"))
    want = ",".join(f"{r.get('name')}={'x'.join(map(str, _shape(r)))}" for r in rjobs)
    for i, rjob in enumerate(rjobs):
        replicas, pods = _shape(rjob)
        job = as_map(as_map(rjob.get("template")).get("spec"))
        base = f"{at}.replicatedJobs[{rjob.get('name', i)}].template.spec"
        last = f"{name}-{rjob.get('name')}-{replicas - 1}-{pods - 1}"
        yield from long_name(report, "metadata.name", last, f"replicatedJob {rjob.get('name')}")
        agents = agents_in(as_map(as_map(job.get("template")).get("spec")), f"{base}.template.spec")
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
    agent: Agent, own: str, rjobs: list[dict[Any, Any]], want: str, report: Report
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
