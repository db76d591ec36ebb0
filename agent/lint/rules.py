"""The rules of `peer-agent lint`: each way an Indexed Job and its headless Service get mis-wired.

Pure: parsed objects in, findings out. The input is a user's YAML, so every field is read through
the accessors below, which turn a wrong type into "absent": a malformed manifest yields findings
or silence, never an exception. Field paths name containers by name (``containers[worker]``),
which survives reordering and reads better than an index.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol

from agent.lint.agent_use import AgentUse, agent_use
from agent.lint.finding import (
    Finding,
    Obj,
    as_list,
    as_map,
    as_str,
    name_of,
    ref_of,
)
from agent.lint.listen import ipv4_only_listen
from agent.lint.service import check_wiring
from agent.topology.model import is_dns_label
from agent.values import value

__all__ = ["lint_objects"]


# Registries that are public and rate-limited or unreachable from air-gapped clusters.
PUBLIC_REGISTRIES = frozenset(
    {
        "docker.io",
        "index.docker.io",
        "registry-1.docker.io",
        "registry.hub.docker.com",
        "ghcr.io",
        "quay.io",
        "gcr.io",
        "k8s.gcr.io",
        "registry.k8s.io",
        "public.ecr.aws",
        "mcr.microsoft.com",
        "nvcr.io",
        "registry.gitlab.com",
    }
)


class _Report(Protocol):
    def __call__(self, field: str, message: str, fix: str, severity: str = ...) -> Finding: ...


def lint_objects(objects: Sequence[tuple[str, Obj]]) -> list[Finding]:
    """Check every Job against the Services among the same objects (from any file)."""
    services = [(file, obj) for file, obj in objects if obj.get("kind") == "Service"]
    findings: list[Finding] = []
    for file, obj in objects:
        # Volcano's Job shares the kind; agent.lint.frameworks checks it.
        if obj.get("kind") == "Job" and obj.get("apiVersion", "batch/v1") == "batch/v1":
            findings.extend(_check_job(file, obj, services))
    # A Service shared by several Jobs would otherwise be reported once per Job.
    return list(dict.fromkeys(findings))


def _int(x: object) -> int | None:
    return x if isinstance(x, int) and not isinstance(x, bool) else None


@value
class _Container:
    path: str
    spec: dict[Any, Any]
    init: bool
    sidecar: bool
    agent: AgentUse | None


def _containers(pod: dict[Any, Any]) -> Iterator[_Container]:
    base = "spec.template.spec"
    for key, init in (("initContainers", True), ("containers", False)):
        for i, raw in enumerate(as_list(pod.get(key))):
            c = as_map(raw)
            label = as_str(c.get("name")) or str(i)
            sidecar = init and c.get("restartPolicy") == "Always"
            yield _Container(f"{base}.{key}[{label}]", c, init, sidecar, agent_use(c))


def _check_job(file: str, job: Obj, services: list[tuple[str, Obj]]) -> Iterator[Finding]:
    spec = as_map(job.get("spec"))
    template = as_map(spec.get("template"))
    pod = as_map(template.get("spec"))
    containers = list(_containers(pod))
    agents = [c for c in containers if c.agent is not None]
    subdomain = as_str(pod.get("subdomain"))
    if subdomain is None and not agents:
        return  # not a Job whose pods talk to each other: none of our business
    name = name_of(job)
    ref = ref_of(job)
    completions = _int(spec.get("completions"))

    def finding(field: str, message: str, fix: str, severity: str = "error") -> Finding:
        return Finding(file, ref, field, message, fix, severity)

    if spec.get("completionMode") != "Indexed":
        yield finding(
            "spec.completionMode",
            f"is {spec.get('completionMode') or 'NonIndexed (unset)'}: pods get random "
            "hostnames and no JOB_COMPLETION_INDEX, so peers cannot be named",
            "set completionMode: Indexed",
        )
    if name is not None and completions is not None and completions >= 1:
        last = f"{name}-{completions - 1}"
        if not is_dns_label(last):
            too_long = len(last) > 63
            yield finding(
                "metadata.name",
                f"the last pod's hostname {last!r} is not a DNS-1123 label (at most 63 "
                "characters of a-z, 0-9 and '-'), so the API server rejects the Job",
                f"shorten the Job name to at most {62 - len(str(completions - 1))} characters"
                if too_long
                else "use only lower-case letters, digits and '-' in the Job name",
            )
    yield from _check_dns_policy(pod, finding)
    for c in agents:
        yield from _check_agent_container(c, pod, completions, finding)
    init_agent = next((c.path for c in agents if c.init), None)
    yield from check_wiring(file, job, services, (init_agent, bool(agents)), finding)


def _check_dns_policy(pod: dict[Any, Any], finding: _Report) -> Iterator[Finding]:
    policy = pod.get("dnsPolicy")
    field = "spec.template.spec.dnsPolicy"
    if policy == "Default":
        yield finding(
            field,
            "is Default: pods use the node's resolv.conf, which has neither cluster DNS nor "
            "the cluster search list, so peer names do not resolve",
            "remove dnsPolicy (ClusterFirst is the default)",
        )
    elif policy == "None":
        searches = as_list(as_map(pod.get("dnsConfig")).get("searches"))
        if not any(isinstance(s, str) and ".svc." in f".{s}." for s in searches):
            yield finding(
                field,
                "is None and dnsConfig.searches has no cluster search list "
                "(<namespace>.svc.<cluster-domain>), so peer names do not resolve",
                "remove dnsPolicy, or add the cluster DNS server and search list to dnsConfig",
            )
    elif pod.get("hostNetwork") is True and policy in (None, "ClusterFirst"):
        yield finding(
            field,
            "is ClusterFirst with hostNetwork: true, which falls back to the node's DNS",
            "set dnsPolicy: ClusterFirstWithHostNet",
        )


def _check_agent_container(
    c: _Container, pod: dict[Any, Any], completions: int | None, finding: _Report
) -> Iterator[Finding]:
    agent = c.agent
    assert agent is not None
    if agent.peers is None:
        # A valueFrom or envFrom may carry it: that cannot be checked without the cluster.
        if not agent.peers_dynamic and not as_list(c.spec.get("envFrom")):
            yield finding(
                f"{c.path}.env",
                "peer-agent is not told the peer count (Kubernetes does not give pods "
                "`completions`)",
                f"add env PEER_AGENT_PEERS: {_quoted(completions)}",
            )
    elif completions is not None and "$" not in agent.peers and agent.peers != str(completions):
        yield finding(
            f"{c.path}.{agent.peers_field}",
            f"says {agent.peers} peers, but completions is {completions}: the barrier "
            "would wait for pods that never come, or release too early",
            f"set it to {_quoted(completions)} (the Job's completions)",
        )
    if agent.probe == "icmp" and not _icmp_allowed(pod, c.spec):
        yield finding(
            f"{c.path}.{agent.probe_field}",
            "probes with ICMP, but neither the sysctl net.ipv4.ping_group_range nor NET_RAW "
            "is given, so ping fails with permission denied",
            "add to the pod securityContext sysctls: [{name: net.ipv4.ping_group_range, value: "
            '"0 2147483647"}], or use the default tcp probe',
        )
    if (listen := ipv4_only_listen(c.spec)) is not None:
        yield finding(
            f"{c.path}.{listen[0]}",
            f"listens on IPv4 only ({listen[1]}): in an IPv6-only cluster, or a dual-stack one "
            "publishing IPv6, peers reach this pod at an IPv6 address and find nothing",
            "remove it (the agent listens on both families by default), or use ::",
            "warning",
        )
    image = as_str(c.spec.get("image"))
    registry = _registry(image) if image else None
    if registry in PUBLIC_REGISTRIES:
        yield finding(
            f"{c.path}.image",
            f"pulls {image} from the public registry {registry}: fails in air-gapped clusters "
            "and hits rate limits",
            "mirror it and point a kustomize images: entry (or the image field) at your registry",
            "warning",
        )


def _quoted(completions: int | None) -> str:
    return f'"{completions}"' if completions is not None else "the Job's completions"


def _icmp_allowed(pod: dict[Any, Any], container: dict[Any, Any]) -> bool:
    sysctls = as_list(as_map(pod.get("securityContext")).get("sysctls"))
    if any(as_map(s).get("name") == "net.ipv4.ping_group_range" for s in sysctls):
        return True
    caps = as_list(as_map(as_map(container.get("securityContext")).get("capabilities")).get("add"))
    return any(cap in ("NET_RAW", "CAP_NET_RAW") for cap in caps)


def _registry(image: str) -> str | None:
    """The registry host an image reference names explicitly (None: the runtime's default)."""
    first, sep, _ = image.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first.lower()
    return None
