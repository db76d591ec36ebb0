"""Which controller made this pod, and its :class:`~agent.topology.Topology`, from the options
and what the pod already has. Pure: it reads only the values and facts it is given.

``--topology auto`` decides from what each controller gives a pod, first match wins:

=====================================  ===========  ========================================
the pod has                            topology     peers and this pod's index
=====================================  ===========  ========================================
``--peers-from FILE``                  hostfile     the hosts listed; index = this pod's line
``LWS_LEADER_ADDRESS`` (LWS injects)   lws          ``LWS_GROUP_SIZE``, ``LWS_WORKER_INDEX``
``PET_MASTER_ADDR`` (Trainer injects)  trainer      ``PET_NNODES``, ``PET_NODE_RANK``
``--replicated-jobs`` (the user sets)  jobset       the listed shape; hostname gives the rank
anything else                          indexed-job  ``--peers``, ``JOB_COMPLETION_INDEX``
=====================================  ===========  ========================================
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from agent.options import OPTIONS
from agent.podfiles import HostsEntry, PodFacts
from agent.problems import Problems
from agent.topology import (
    JobSetGrid,
    Kind,
    LeaderWorkers,
    Listed,
    Naming,
    ReplicatedJob,
    Suffixed,
    Topology,
    is_dns_label,
)
from agent.topology_hostfile import parse_hostfile, qualify

__all__ = ["choose_kind", "derive_topology", "is_number", "parse_replicated_jobs"]

_OPT = {o.dest: o for o in OPTIONS}
_SHAPE = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?)=(\d+)x(\d+)$")
_GRID_TAIL = re.compile(r"^(\d+)-(\d+)$")


def is_number(text: str) -> bool:
    """ASCII digits only: str.isdigit() also passes '²', which int() then refuses."""
    text = text.strip()
    return text.isascii() and text.isdigit()


def parse_replicated_jobs(text: str) -> tuple[ReplicatedJob, ...]:
    """``driver=1x1,workers=2x4``: name=REPLICASxPODS per replicatedJob, in spec order."""
    jobs = []
    for part in text.replace(" ", "").split(","):
        match = _SHAPE.match(part.lower())
        if not match or int(match.group(3)) < 1 or int(match.group(4)) < 1:
            raise ValueError(
                f"not NAME=REPLICASxPODS: {part!r} (e.g. workers=2x4: 2 Jobs of 4 pods)"
            )
        jobs.append(ReplicatedJob(match.group(1), int(match.group(3)), int(match.group(4))))
    if len({j.name for j in jobs}) != len(jobs):
        raise ValueError(f"a replicatedJob is listed twice: {text!r}")
    return tuple(jobs)


def choose_kind(get: Callable[[str], str | None], environ: Mapping[str, str]) -> tuple[Kind, str]:
    """The topology and why: ``--topology`` when given, else the first input the pod has."""
    given = get("topology")
    if given is not None and given != "auto":
        return Kind(given), "given"
    if get("peers_from") is not None:
        return Kind.HOSTFILE, "--peers-from is set"
    if environ.get("LWS_LEADER_ADDRESS"):
        return Kind.LWS, "LWS_LEADER_ADDRESS is set: a LeaderWorkerSet pod"
    if environ.get("PET_MASTER_ADDR"):
        return Kind.TRAINER, "PET_MASTER_ADDR is set: a Kubeflow Trainer pod"
    if get("replicated_jobs") is not None:
        return Kind.JOBSET, "PEER_AGENT_REPLICATED_JOBS is set"
    if get("index") is not None:
        return Kind.INDEXED_JOB, "JOB_COMPLETION_INDEX is set: an Indexed Job pod"
    return Kind.INDEXED_JOB, "nothing else matched"


@dataclass
class _Inputs:
    get: Callable[[str], str | None]
    facts: PodFacts
    hostname: str
    entry: HostsEntry | None
    p: Problems

    @property
    def environ(self) -> Mapping[str, str]:
        return self.facts.environ

    def count(self, dest: str, var: str, *, minimum: int) -> int | None:
        """An integer from the option when given, else from the controller's variable."""
        text, also = self.get(dest), ""
        if text is None and self.environ.get(var):
            text, also = self.environ[var], var
        if text is None:
            self.p.add(_OPT[dest], "required", also=var)
            return None
        if not is_number(text) or int(text) < minimum:
            what = "a positive" if minimum else "a non-negative"
            self.p.add(_OPT[dest], f"not {what} integer: {text!r}", also=also or var)
            return None
        return int(text)

    def address(self, var: str) -> list[str] | None:
        """``<host>.<service>[.<ns>...]`` from a controller's variable, split into labels."""
        text = self.environ.get(var, "").strip().lower().rstrip(".")
        labels = text.split(".")
        if len(labels) < 2 or not all(is_dns_label(x) for x in labels):
            self.p.add(None, f"{var}: not <host>.<service>[.<namespace>]: {text!r}")
            return None
        return labels


def derive_topology(
    get: Callable[[str], str | None],
    facts: PodFacts,
    *,
    hostname: str,
    entry: HostsEntry | None,
    p: Problems,
) -> Topology | None:
    """The topology, or None with the reasons added to ``p``."""
    topology_text = get("topology")
    if topology_text is not None and topology_text not in ("auto", *Kind):
        p.add(
            _OPT["topology"],
            f"unknown topology {topology_text!r} (use auto, {', '.join(Kind)})",
        )
        return None
    kind, reason = choose_kind(get, facts.environ)
    if reason == "given":
        reason = ""
    i = _Inputs(get, facts, hostname, entry, p)
    namespace = (
        get("namespace")
        or (entry.namespace if entry else None)
        or (facts.sa_namespace.strip() or None)
    )
    zone = (get("cluster_domain") or (entry.zone if entry else "cluster.local")).rstrip(".")
    derived = {
        Kind.INDEXED_JOB: _indexed_job,
        Kind.JOBSET: _jobset,
        Kind.LWS: _lws,
        Kind.TRAINER: _trainer,
        Kind.HOSTFILE: _hostfile,
    }[kind](i, namespace)
    if derived is not None:
        namespace = derived[3]
    if namespace is None:
        p.add(_OPT["namespace"], "cannot derive the namespace from /etc/hosts; set it")
    if derived is None or namespace is None:
        return None
    job, naming, service, _, peers, index = derived
    for what, name in (("service", service), ("namespace", namespace)):
        if name is not None and not is_dns_label(name):
            p.add(_OPT[what], f"{name!r} is not a DNS-1123 label")
    for last in _longest_names(naming, peers):
        if not is_dns_label(last):
            why = "is over 63 characters" if len(last) > 63 else "is not a DNS-1123 label"
            p.add(_OPT["job_name"], f"peer hostname {last!r} {why}")
    if p.items:
        return None
    return Topology(
        kind=kind,
        job=job,
        naming=naming,
        service=service,
        namespace=namespace,
        zone=zone,
        peers=peers,
        index=index,
        reason=reason,
    )


def _longest_names(naming: Naming, peers: int) -> list[str]:
    """The hostnames with the most digits: the last pod's, of each replicatedJob under JobSet."""
    if isinstance(naming, Listed):
        return []
    if isinstance(naming, JobSetGrid):
        return [f"{naming.jobset}-{j.name}-{j.replicas - 1}-{j.pods - 1}" for j in naming.jobs]
    return [naming.hostname(peers - 1)]


_Derived = tuple[str, Naming, str | None, str | None, int, int | None]


def _service(i: _Inputs) -> str | None:
    service = i.get("service") or (i.entry.subdomain if i.entry else None)
    if service is None:
        i.p.add(
            _OPT["service"],
            "cannot derive the service: no '<hostname>.<subdomain>.<ns>.svc.<zone>' line in "
            "/etc/hosts (set spec.subdomain to the headless Service's name)",
        )
    return service


def _indexed_job(i: _Inputs, namespace: str | None) -> _Derived | None:
    peers = i.count("peers", "", minimum=1) if i.get("peers") is not None else None
    if i.get("peers") is None:
        i.p.add(_OPT["peers"], "required: the number of pods (the Job's completions)")
    index_text, index = i.get("index"), None
    if index_text is None:
        i.p.add(_OPT["index"], "required: Kubernetes sets it in an Indexed Job; else pass --index")
    elif not is_number(index_text):
        i.p.add(_OPT["index"], f"not a non-negative integer: {index_text!r}")
    else:
        index = int(index_text)
        if peers is not None and index >= peers:
            i.p.add(_OPT["index"], f"index {index} is not below the peer count {peers}")
    job = i.get("job_name")
    if job is None and index is not None:
        suffix = f"-{index}"
        if i.hostname.endswith(suffix) and len(i.hostname) > len(suffix):
            job = i.hostname[: -len(suffix)]
        else:
            i.p.add(
                _OPT["job_name"],
                f"cannot derive the job name: hostname {i.hostname!r} does not end in {suffix!r}",
            )
    service = _service(i)
    if peers is None or index is None or job is None or service is None:
        return None
    return job, Suffixed(job), service, namespace, peers, index


def _jobset(i: _Inputs, namespace: str | None) -> _Derived | None:
    opt = _OPT["replicated_jobs"]
    jobs = i.p.parse(opt, i.get("replicated_jobs"), parse_replicated_jobs)
    if i.get("replicated_jobs") is None:
        i.p.add(
            opt,
            "required under JobSet: NAME=REPLICASxPODS for each replicatedJob the "
            "barrier spans, in spec order (e.g. workers=2x4)",
        )
    service = _service(i)
    # The JobSet's name: its Service (spec.network.subdomain) defaults to it.
    jobset = i.get("job_name") or service
    if jobs is None or jobset is None:
        return None
    grid = JobSetGrid(jobset, jobs)
    index = _grid_rank(i, grid)
    total = sum(j.size for j in jobs)
    if i.get("peers") is not None and i.get("peers") != str(total):
        i.p.add(
            _OPT["peers"],
            f"{i.get('peers')!r} differs from {total}, the pods {opt.flag} lists; leave it unset",
        )
    if index is None:
        return None
    return jobset, grid, service, namespace, total, index


def _grid_rank(i: _Inputs, grid: JobSetGrid) -> int | None:
    for job in grid.jobs:
        prefix = f"{grid.jobset}-{job.name}-"
        if not i.hostname.startswith(prefix):
            continue
        tail = _GRID_TAIL.match(i.hostname[len(prefix) :])
        if tail is None:
            continue
        job_index, pod_index = int(tail.group(1)), int(tail.group(2))
        if job_index >= job.replicas or pod_index >= job.pods:
            i.p.add(
                _OPT["replicated_jobs"],
                f"pod {i.hostname!r} is outside {job.name}="
                f"{job.replicas}x{job.pods}: is the shape the manifest's?",
            )
            return None
        completion = i.get("index")
        if completion is not None and completion != str(pod_index):
            i.p.add(
                _OPT["index"], f"{completion!r} is not the pod index in hostname {i.hostname!r}"
            )
            return None
        return grid.rank(job.name, job_index, pod_index)
    listed = ", ".join(j.name for j in grid.jobs)
    i.p.add(
        _OPT["replicated_jobs"],
        f"hostname {i.hostname!r} is not {grid.jobset}-<rjob>-<jobIdx>-<podIdx> for a listed "
        f"replicatedJob ({listed}); list this pod's, and when spec.network.subdomain is not the "
        "JobSet's name give --job-name / PEER_AGENT_JOB_NAME (the annotation "
        "jobset.sigs.k8s.io/jobset-name through the Downward API)",
    )
    return None


def _lws(i: _Inputs, namespace: str | None) -> _Derived | None:
    labels = i.address("LWS_LEADER_ADDRESS")
    peers = i.count("peers", "LWS_GROUP_SIZE", minimum=1)
    index = i.count("index", "LWS_WORKER_INDEX", minimum=0)
    if labels is None or peers is None or index is None:
        return None
    naming = LeaderWorkers(labels[0])
    service = i.get("service") or labels[1]
    namespace = i.get("namespace") or (labels[2] if len(labels) > 2 else namespace)
    return _member(i, naming, labels[0], service, namespace, peers, index, "LWS_WORKER_INDEX")


def _trainer(i: _Inputs, namespace: str | None) -> _Derived | None:
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
    return _member(i, naming, labels[1], service, namespace, peers, index, rank_var)


def _member(
    i: _Inputs,
    naming: Naming,
    job: str,
    service: str,
    namespace: str | None,
    peers: int,
    index: int,
    index_var: str,
) -> _Derived | None:
    """A pod that a controller numbered: its index must be below N and name its hostname."""
    if index >= peers:
        i.p.add(_OPT["index"], f"index {index} is not below the peer count {peers}", also=index_var)
        return None
    if i.hostname and naming.hostname(index) != i.hostname:
        i.p.add(
            _OPT["hostname"],
            f"{i.hostname!r} is not peer {index}'s hostname {naming.hostname(index)!r} "
            f"({index_var}={index})",
        )
        return None
    return job, naming, service, namespace, peers, index


def _hostfile(i: _Inputs, namespace: str | None) -> _Derived | None:
    opt = _OPT["peers_from"]
    path = i.get("peers_from")
    if path is None:
        i.p.add(opt, "required under --topology hostfile: the file listing the peers")
        return None
    read = i.facts.file(path)
    if read.data is None:
        i.p.add(opt, f"cannot read {path!r}: {read.error}")
        return None
    hosts, problems = parse_hostfile(read.data.decode("utf-8", "replace"))
    for problem in problems[:5]:
        i.p.add(opt, f"{path}: {problem}")
    if not hosts and not problems:
        i.p.add(opt, f"{path!r} lists no hosts")
    service = i.get("service")
    if namespace is None or problems or not hosts:
        return None
    zone = (i.get("cluster_domain") or (i.entry.zone if i.entry else "cluster.local")).rstrip(".")
    if any("." not in h.name for h in hosts) and service is None:
        i.p.add(
            opt,
            f"{path!r} lists bare hostnames: give their Service with --service / "
            "PEER_AGENT_SERVICE",
        )
        return None
    names = tuple(qualify(h.name, service=service, namespace=namespace, zone=zone) for h in hosts)
    own = i.entry.fqdn if i.entry else None
    index = next(
        (n for n, name in enumerate(names) if name == own or name.split(".")[0] == i.hostname),
        None,
    )
    if i.get("peers") is not None and i.get("peers") != str(len(names)):
        i.p.add(_OPT["peers"], f"{path!r} lists {len(names)} hosts, not {i.get('peers')}")
        return None
    job = i.get("job_name") or next((n.split(".")[1] for n in names if n.count(".") > 1), "hosts")
    return job, Listed(names), service, namespace, len(names), index
