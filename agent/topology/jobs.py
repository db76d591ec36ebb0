"""Pods the Job controller names ``<job>-<index>``: an Indexed Job, and the child Jobs of a JobSet
(``<jobset>-<rjob>-<jobIdx>-<podIdx>``, ranked through the listed replicatedJobs in order).

Pure.
"""

from __future__ import annotations

import re

from agent.topology.inputs import OPT, Derived, Inputs, is_number
from agent.topology.model import JobSetGrid, ReplicatedJob, Suffixed
from agent.topology.sources import HOSTNAME, Origin, Source, Sources

__all__ = ["indexed_job", "jobset", "parse_replicated_jobs"]

# compiled at their first use (``re`` caches them): JobSet pods only
_SHAPE = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?)=(\d+)x(\d+)$"
_GRID_TAIL = r"^(\d+)-(\d+)$"


def parse_replicated_jobs(text: str) -> tuple[ReplicatedJob, ...]:
    """``driver=1x1,workers=2x4``: name=REPLICASxPODS per replicatedJob, in spec order."""
    jobs = []
    for part in text.replace(" ", "").split(","):
        match = re.match(_SHAPE, part.lower())
        if not match or int(match.group(3)) < 1 or int(match.group(4)) < 1:
            raise ValueError(
                f"not NAME=REPLICASxPODS: {part!r} (e.g. workers=2x4: 2 Jobs of 4 pods)"
            )
        jobs.append(ReplicatedJob(match.group(1), int(match.group(3)), int(match.group(4))))
    if len({j.name for j in jobs}) != len(jobs):
        raise ValueError(f"a replicatedJob is listed twice: {text!r}")
    return tuple(jobs)


def indexed_job(i: Inputs, namespace: str | None) -> Derived | None:
    peers = i.count("peers", "", minimum=1) if i.get("peers") is not None else None
    if i.get("peers") is None:
        i.p.add(OPT["peers"], "required: the number of pods (the Job's completions)")
    index_text, index = i.get("index"), None
    if index_text is None:
        i.p.add(OPT["index"], "required: Kubernetes sets it in an Indexed Job; else pass --index")
    elif not is_number(index_text):
        i.p.add(OPT["index"], f"not a non-negative integer: {index_text!r}")
    else:
        index = int(index_text)
        if peers is not None and index >= peers:
            i.p.add(OPT["index"], f"index {index} is not below the peer count {peers}")
    job = i.get("job_name")
    if job is None and index is not None:
        suffix = f"-{index}"
        if i.hostname.endswith(suffix) and len(i.hostname) > len(suffix):
            job = i.hostname[: -len(suffix)]
        else:
            i.p.add(
                OPT["job_name"],
                f"cannot derive the job name: hostname {i.hostname!r} does not end in {suffix!r}",
            )
    service = i.service()
    if peers is None or index is None or job is None or service is None:
        return None
    sources = Sources(
        peers=i.source("peers"),
        index=i.source("index"),
        job=i.source("job_name") or HOSTNAME,
        service=i.service_source(),
    )
    return Derived(job, Suffixed(job), service, namespace, peers, index, sources)


def jobset(i: Inputs, namespace: str | None) -> Derived | None:
    opt = OPT["replicated_jobs"]
    jobs = i.p.parse(opt, i.get("replicated_jobs"), parse_replicated_jobs)
    if i.get("replicated_jobs") is None:
        i.p.add(
            opt,
            "required under JobSet: NAME=REPLICASxPODS for each replicatedJob the "
            "barrier spans, in spec order (e.g. workers=2x4)",
        )
    service = i.service()
    # The JobSet's name: its Service (spec.network.subdomain) defaults to it.
    jobset = i.get("job_name") or service
    if jobs is None or jobset is None:
        return None
    grid = JobSetGrid(jobset, jobs)
    index = _grid_rank(i, grid)
    total = sum(j.size for j in jobs)
    if i.get("peers") is not None and i.get("peers") != str(total):
        i.p.add(
            OPT["peers"],
            f"{i.get('peers')!r} differs from {total}, the pods {opt.flag} lists; leave it unset",
        )
    if index is None:
        return None
    sources = Sources(
        peers=i.source("replicated_jobs"),
        index=HOSTNAME,
        job=i.source("job_name") or Source(Origin.DERIVED, "the Service's name"),
        service=i.service_source(),
    )
    return Derived(jobset, grid, service, namespace, total, index, sources)


def _grid_rank(i: Inputs, grid: JobSetGrid) -> int | None:
    for job in grid.jobs:
        prefix = f"{grid.jobset}-{job.name}-"
        if not i.hostname.startswith(prefix):
            continue
        tail = re.match(_GRID_TAIL, i.hostname[len(prefix) :])
        if tail is None:
            continue
        job_index, pod_index = int(tail.group(1)), int(tail.group(2))
        if job_index >= job.replicas or pod_index >= job.pods:
            i.p.add(
                OPT["replicated_jobs"],
                f"pod {i.hostname!r} is outside {job.name}="
                f"{job.replicas}x{job.pods}: is the shape the manifest's?",
            )
            return None
        completion = i.get("index")
        if completion is not None and completion != str(pod_index):
            i.p.add(OPT["index"], f"{completion!r} is not the pod index in hostname {i.hostname!r}")
            return None
        return grid.rank(job.name, job_index, pod_index)
    listed = ", ".join(j.name for j in grid.jobs)
    i.p.add(
        OPT["replicated_jobs"],
        f"hostname {i.hostname!r} is not {grid.jobset}-<rjob>-<jobIdx>-<podIdx> for a listed "
        f"replicatedJob ({listed}); list this pod's, and when spec.network.subdomain is not the "
        "JobSet's name give --job-name / PEER_AGENT_JOB_NAME (the annotation "
        "jobset.sigs.k8s.io/jobset-name through the Downward API)",
    )
    return None
