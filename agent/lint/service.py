"""`peer-agent lint`: the headless Service an Indexed Job's pods are named in, and its mistakes.

The Service is the one the pod template's ``subdomain`` names, as the EndpointSlice controller
pairs them; when that names none (or is unset), the one whose selector picks the Job's pods, so
that a wrong ``subdomain`` does not hide what is wrong with the Service it should name: every
finding is reported in one pass. Pure.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from agent.lint.finding import (
    Finding,
    Obj,
    as_list,
    as_map,
    as_str,
    name_of,
    namespace_of,
    ref_of,
)

__all__ = ["AGENT_PORT_NAME", "JOB_NAME_LABELS", "check_wiring", "find_service"]

JOB_NAME_LABELS = ("batch.kubernetes.io/job-name", "job-name")
UID_LABELS = ("batch.kubernetes.io/controller-uid", "controller-uid")
AGENT_PORT_NAME = "peer-agent"


def check_wiring(
    file: str,
    job: Obj,
    services: list[tuple[str, Obj]],
    agents: tuple[str | None, bool],
    finding: Callable[[str, str, str], Finding],
) -> Iterator[Finding]:
    """The Job's ``subdomain`` against the Services among the inputs, and that Service.
    ``agents``: the path of a container that runs peer-agent before the pod can be Ready (or
    None), and whether any container runs it."""
    template = as_map(as_map(job.get("spec")).get("template"))
    subdomain = as_str(as_map(template.get("spec")).get("subdomain"))
    name, namespace = name_of(job), namespace_of(job)
    named = find_service(services, subdomain, namespace) if subdomain is not None else None
    if subdomain is None:
        yield finding(
            "spec.template.spec.subdomain",
            "is unset: the pods get no DNS name, so peer-agent cannot find them",
            "set subdomain to the name of a headless Service that selects these pods",
        )
    elif named is None:
        yield finding(
            "spec.template.spec.subdomain",
            f"names Service {subdomain!r}, but there is no such Service in "
            f"{_ns_text(namespace)} among the linted objects",
            _subdomain_fix(services, subdomain, name),
        )
    service = named or _selecting(services, name, namespace)
    if service is not None:
        yield from _check_service(service, name, template, agents)


def _selecting(
    services: list[tuple[str, Obj]], name: str | None, namespace: str | None
) -> tuple[str, Obj] | None:
    """The Service whose selector names this Job's pods by the Job controller's label."""
    for file, svc in services:
        selector = as_map(as_map(svc.get("spec")).get("selector"))
        ns = namespace_of(svc)
        same_ns = ns is None or namespace is None or ns == namespace
        if name is not None and same_ns and any(selector.get(k) == name for k in JOB_NAME_LABELS):
            return file, svc
    return None


def _ns_text(namespace: str | None) -> str:
    return f"namespace {namespace}" if namespace else "the Job's namespace"


def _subdomain_fix(services: list[tuple[str, Obj]], subdomain: str, name: str | None) -> str:
    for _, svc in services:
        if name_of(svc) == subdomain:
            return (
                f"put Service {subdomain} in the Job's namespace: a Service names only the pods "
                "of its own namespace"
            )
    if (selecting := _selecting(services, name, None)) is not None:
        return f"set subdomain: {name_of(selecting[1])} (the Service that selects this Job's pods)"
    return (
        "create a headless Service of that name in the Job's namespace (lint the Job and its "
        "Service together: kubectl kustomize DIR | peer-agent lint -)"
    )


def find_service(
    services: list[tuple[str, Obj]], name: str, namespace: str | None
) -> tuple[str, Obj] | None:
    for file, svc in services:
        # An unset namespace is whatever `kubectl apply -n` says, so it matches any.
        ns = namespace_of(svc)
        if name_of(svc) == name and (ns is None or namespace is None or ns == namespace):
            return file, svc
    return None


def _check_service(
    service: tuple[str, Obj],
    job_name: str | None,
    template: dict[Any, Any],
    agents: tuple[str | None, bool],
) -> Iterator[Finding]:
    file, svc = service
    spec = as_map(svc.get("spec"))
    ref = ref_of(svc)
    if spec.get("clusterIP") != "None":
        yield Finding(
            file,
            ref,
            "spec.clusterIP",
            f"is {spec.get('clusterIP') or 'unset (a virtual IP is allocated)'}: the Service "
            "is not headless, so DNS has one virtual IP instead of a name per pod",
            "set clusterIP: None (clusterIP cannot be changed in place: delete and recreate)",
        )
    yield from _check_selector(file, ref, spec, job_name, template)
    init_agent, any_agent = agents
    if init_agent is not None and spec.get("publishNotReadyAddresses") is not True:
        yield Finding(
            file,
            ref,
            "spec.publishNotReadyAddresses",
            f"is not true, but {init_agent} runs peer-agent before the pod can be "
            "Ready: DNS publishes no pod until it is Ready, so the barrier waits forever",
            "set publishNotReadyAddresses: true",
        )
    if any_agent:
        names = [as_map(p).get("name") for p in as_list(spec.get("ports"))]
        if AGENT_PORT_NAME not in names:
            yield Finding(
                file,
                ref,
                "spec.ports",
                f"has no port named {AGENT_PORT_NAME!r}: no SRV record "
                f"_{AGENT_PORT_NAME}._tcp.<service> lists all peers in one answer, so "
                "discovery costs one query per peer",
                f"add a port {{name: {AGENT_PORT_NAME}, port: 29300, targetPort: 29300, "
                "protocol: TCP}",
                "warning",
            )


def _check_selector(
    file: str, ref: str, spec: dict[Any, Any], job_name: str | None, template: dict[Any, Any]
) -> Iterator[Finding]:
    selector = as_map(spec.get("selector"))
    fix = f"select the label the Job controller sets: batch.kubernetes.io/job-name: {job_name}"
    if not selector:
        yield Finding(
            file,
            ref,
            "spec.selector",
            "is empty: the Service selects no pods, so no pod gets a DNS record",
            fix,
        )
        return
    labels: dict[Any, Any] = dict(as_map(as_map(template.get("metadata")).get("labels")))
    if job_name is not None:
        labels.update(dict.fromkeys(JOB_NAME_LABELS, job_name))
    for key, value in selector.items():
        if key in UID_LABELS:
            yield Finding(
                file,
                ref,
                f"spec.selector[{key}]",
                "selects on the Job's controller-uid, which is new each time the Job is "
                "created: the selector stops matching after a re-run",
                fix,
            )
        elif key in JOB_NAME_LABELS and job_name is None:
            continue  # generateName: the name is not known until the Job is created
        elif key not in labels or str(labels[key]) != str(value):
            have = f"{key}={labels[key]}" if key in labels else f"no label {key}"
            yield Finding(
                file,
                ref,
                f"spec.selector[{key}]",
                f"selects {key}={value}, but the pods of Job {job_name or '(generated)'} have "
                f"{have}: the Service selects none of them",
                fix,
            )
