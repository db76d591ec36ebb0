"""A workload as its user writes it: a headless Service and an Indexed Job, read from YAML.

Only what the harness acts on is kept, in frozen dataclasses (of `resources`, `limits.cpu`);
everything else in the manifest (memory, images' registries, seccomp, ...) is accepted and
ignored. A directory with a
kustomization.yaml is rendered with `kubectl kustomize`, so tests run exactly what `k8s/` ships.
"""

from __future__ import annotations

import base64
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

Doc = Mapping[str, Any]
_CPU = re.compile(r"(\d+(?:\.\d+)?)(m?)")  # a CPU quantity: cores, or millicores with "m"


class WorkloadError(ValueError):
    """The manifest lacks something the harness needs (or uses what it cannot model)."""


@dataclass(frozen=True)
class EnvVar:
    """`value`, or a Downward API `fieldRef` path, or a Secret key (resolved at pod start)."""

    name: str
    value: str | None = None
    field_path: str | None = None
    secret: tuple[str, str] | None = None  # (secret name, key)


@dataclass(frozen=True)
class Probe:
    """The subset of a container probe the harness runs: httpGet, tcpSocket or exec."""

    http_path: str | None = None
    port: int | str | None = None  # a name is looked up in the container's ports
    command: tuple[str, ...] = ()
    period: float = 10.0
    initial_delay: float = 0.0
    failure_threshold: int = 3


@dataclass(frozen=True)
class Security:
    """The security context fields that change what a process may do on the host."""

    run_as_user: int | None = None
    run_as_group: int | None = None
    drop: tuple[str, ...] = ()
    add: tuple[str, ...] = ()
    # Only a real container runtime (the podman runtime, see podman.py) enforces these two.
    read_only_root: bool | None = None
    no_new_privileges: bool | None = None


@dataclass(frozen=True)
class Container:
    name: str
    image: str
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    env: tuple[EnvVar, ...] = ()
    ports: tuple[tuple[str | None, int], ...] = ()  # (name, containerPort)
    restart_policy: str | None = None  # "Always" on an init container = native sidecar
    security: Security = field(default_factory=Security)
    startup_probe: Probe | None = None
    readiness_probe: Probe | None = None
    mounts: tuple[tuple[str, str], ...] = ()  # (volume name, mountPath)
    cpu_limit: int | None = None  # resources.limits.cpu in millicores; None: unlimited

    @property
    def is_sidecar(self) -> bool:
        return self.restart_policy == "Always"


@dataclass(frozen=True)
class DNSConfig:
    nameservers: tuple[str, ...] = ()
    searches: tuple[str, ...] = ()
    options: tuple[tuple[str, str | None], ...] = ()


@dataclass(frozen=True)
class PodTemplate:
    subdomain: str | None
    restart_policy: str
    dns_policy: str
    dns_config: DNSConfig
    init_containers: tuple[Container, ...]
    containers: tuple[Container, ...]
    sysctls: tuple[tuple[str, str], ...]
    security: Security
    labels: tuple[tuple[str, str], ...]
    volumes: tuple[str, ...]  # emptyDir names
    # ConfigMap volumes a controller adds (MPI Operator's hostfile, Volcano's host lists):
    # (volume name, ((file name, content), ...))
    files: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()
    #: Secret volumes: (volume name, secret name, defaultMode); the Workload's Secrets fill them
    secret_volumes: tuple[tuple[str, str, int], ...] = ()
    #: terminationGracePeriodSeconds: how long a deleted pod's containers have after SIGTERM
    termination_grace: float = 30.0


@dataclass(frozen=True)
class Job:
    name: str
    namespace: str
    completions: int
    parallelism: int
    completion_mode: str
    pod_replacement_policy: str
    backoff_limit: int | None  # None: not in the manifest
    template: PodTemplate
    # How other controllers' pods differ from an Indexed Job's (tests/harness/frameworks.py):
    hostnames: tuple[str, ...] = ()  # per index; empty: <job>-<index>
    completion_index_env: bool = True  # JOB_COMPLETION_INDEX (Indexed Jobs only)
    index_label: str | None = None  # a pod label holding the index (LWS's worker-index)
    annotations: tuple[tuple[str, str], ...] = ()  # pod annotations (for the Downward API)
    # The Service that selects the pods when the template names none as its subdomain (the
    # Training Operator's per-replica Services): its name is the pods' DNS name, no hostname
    # record under it.
    service: str | None = None

    def hostname(self, index: int) -> str:
        return self.hostnames[index] if self.hostnames else f"{self.name}-{index}"


@dataclass(frozen=True)
class ServicePort:
    name: str | None
    port: int
    protocol: str
    target_port: int | str  # a name is resolved against each pod's container ports


@dataclass(frozen=True)
class Service:
    name: str
    namespace: str
    headless: bool
    publish_not_ready_addresses: bool
    selector: tuple[tuple[str, str], ...]
    ports: tuple[ServicePort, ...]


@dataclass(frozen=True)
class Workload:
    services: tuple[Service, ...]
    jobs: tuple[Job, ...]
    secrets: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()

    def job(self, name: str | None = None) -> Job:
        for job in self.jobs:
            if name is None or job.name == name:
                return job
        raise WorkloadError(f"no Job {name or ''} in the workload".replace("  ", " "))

    def service_for(self, job: Job) -> Service | None:
        """The Service named by the pod template's subdomain, as the EndpointSlice controller
        pairs them (same namespace), else the one a controller made to select the Job's pods."""
        name = job.template.subdomain or job.service
        for svc in self.services:
            if svc.name == name and svc.namespace == job.namespace:
                return svc
        return None

    def secret(self, name: str, key: str) -> str:
        for secret_name, items in self.secrets:
            if secret_name == name:
                for k, v in items:
                    if k == key:
                        return v
        raise WorkloadError(f"secret {name}/{key} is not in the workload")


def _strs(value: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in value or ())


def _security(doc: Doc | None) -> Security:
    doc = doc or {}
    caps = doc.get("capabilities") or {}
    return Security(
        run_as_user=doc.get("runAsUser"),
        run_as_group=doc.get("runAsGroup"),
        drop=tuple(str(c).upper() for c in caps.get("drop") or ()),
        add=tuple(str(c).upper() for c in caps.get("add") or ()),
        read_only_root=doc.get("readOnlyRootFilesystem"),
        no_new_privileges=(
            None
            if doc.get("allowPrivilegeEscalation") is None
            else not doc["allowPrivilegeEscalation"]
        ),
    )


def _probe(doc: Doc | None) -> Probe | None:
    if not doc:
        return None
    http = doc.get("httpGet")
    tcp = doc.get("tcpSocket")
    exec_ = doc.get("exec")
    port = (http or tcp or {}).get("port")
    return Probe(
        http_path=http.get("path", "/") if http else None,
        port=port,
        command=_strs(exec_.get("command")) if exec_ else (),
        period=float(doc.get("periodSeconds", 10)),
        initial_delay=float(doc.get("initialDelaySeconds", 0)),
        failure_threshold=int(doc.get("failureThreshold", 3)),
    )


def _env(doc: Doc) -> EnvVar:
    source = doc.get("valueFrom")
    if source is None:
        return EnvVar(str(doc["name"]), value=str(doc.get("value", "")))
    if "fieldRef" in source:
        return EnvVar(str(doc["name"]), field_path=str(source["fieldRef"]["fieldPath"]))
    if "secretKeyRef" in source:
        ref = source["secretKeyRef"]
        return EnvVar(str(doc["name"]), secret=(str(ref["name"]), str(ref["key"])))
    raise WorkloadError(f"env {doc['name']}: only value, fieldRef and secretKeyRef are modelled")


def millicores(value: object) -> int:
    """A Kubernetes CPU quantity (`100m`, `0.5`, `2`, `"1.5"`) in millicores; ValueError else."""
    match = _CPU.fullmatch(str(value).strip())
    if match is None:
        raise ValueError(f"not a CPU quantity: {value!r}")
    number = float(match[1])
    milli = round(number if match[2] else number * 1000)
    if milli < 1:
        raise ValueError(f"a CPU limit below 1m: {value!r}")
    return milli


def _cpu_limit(doc: Doc) -> int | None:
    cpu = ((doc.get("resources") or {}).get("limits") or {}).get("cpu")
    if cpu is None:
        return None
    try:
        return millicores(cpu)
    except ValueError as exc:
        raise WorkloadError(f"container {doc.get('name')}: resources.limits.cpu: {exc}") from None


def _container(doc: Doc) -> Container:
    return Container(
        name=str(doc["name"]),
        image=str(doc.get("image", "")),
        command=_strs(doc.get("command")),
        args=_strs(doc.get("args")),
        env=tuple(_env(e) for e in doc.get("env") or ()),
        ports=tuple((p.get("name"), int(p["containerPort"])) for p in doc.get("ports") or ()),
        restart_policy=doc.get("restartPolicy"),
        security=_security(doc.get("securityContext")),
        startup_probe=_probe(doc.get("startupProbe")),
        readiness_probe=_probe(doc.get("readinessProbe")),
        mounts=tuple((str(m["name"]), str(m["mountPath"])) for m in doc.get("volumeMounts") or ()),
        cpu_limit=_cpu_limit(doc),
    )


def _template(doc: Doc) -> PodTemplate:
    spec = doc.get("spec") or {}
    meta = doc.get("metadata") or {}
    dns_config = spec.get("dnsConfig") or {}
    pod_security = spec.get("securityContext") or {}
    volumes = spec.get("volumes") or ()
    for volume in volumes:
        if "emptyDir" not in volume and "secret" not in volume:
            raise WorkloadError(
                f"volume {volume.get('name')}: only emptyDir and secret are modelled"
            )
    return PodTemplate(
        subdomain=spec.get("subdomain"),
        restart_policy=str(spec.get("restartPolicy", "Never")),
        dns_policy=str(spec.get("dnsPolicy", "ClusterFirst")),
        dns_config=DNSConfig(
            nameservers=_strs(dns_config.get("nameservers")),
            searches=_strs(dns_config.get("searches")),
            options=tuple(
                (str(o["name"]), None if o.get("value") is None else str(o["value"]))
                for o in dns_config.get("options") or ()
            ),
        ),
        init_containers=tuple(_container(c) for c in spec.get("initContainers") or ()),
        containers=tuple(_container(c) for c in spec.get("containers") or ()),
        sysctls=tuple((str(s["name"]), str(s["value"])) for s in pod_security.get("sysctls") or ()),
        security=_security(pod_security),
        labels=tuple((str(k), str(v)) for k, v in (meta.get("labels") or {}).items()),
        volumes=tuple(str(v["name"]) for v in volumes if "emptyDir" in v),
        secret_volumes=tuple(
            (
                str(v["name"]),
                str(v["secret"]["secretName"]),
                int(v["secret"].get("defaultMode", 0o644)),
            )
            for v in volumes
            if "secret" in v
        ),
        termination_grace=float(spec.get("terminationGracePeriodSeconds", 30)),
    )


def _job(doc: Doc) -> Job:
    meta, spec = doc["metadata"], doc["spec"]
    completions = int(spec.get("completions", 1))
    mode = str(spec.get("completionMode", "NonIndexed"))
    if mode != "Indexed":
        raise WorkloadError(f"Job {meta['name']}: only completionMode: Indexed is modelled")
    return Job(
        name=str(meta["name"]),
        namespace=str(meta.get("namespace", "default")),
        completions=completions,
        parallelism=int(spec.get("parallelism", completions)),
        completion_mode=mode,
        pod_replacement_policy=str(spec.get("podReplacementPolicy", "TerminatingOrFailed")),
        backoff_limit=None if "backoffLimit" not in spec else int(spec["backoffLimit"]),
        template=_template(spec["template"]),
    )


def _service(doc: Doc) -> Service:
    meta, spec = doc["metadata"], doc.get("spec") or {}
    return Service(
        name=str(meta["name"]),
        namespace=str(meta.get("namespace", "default")),
        headless=spec.get("clusterIP") == "None",
        publish_not_ready_addresses=bool(spec.get("publishNotReadyAddresses", False)),
        selector=tuple((str(k), str(v)) for k, v in (spec.get("selector") or {}).items()),
        ports=tuple(_service_port(p) for p in spec.get("ports") or ()),
    )


def _service_port(doc: Doc) -> ServicePort:
    target = doc.get("targetPort", doc["port"])
    return ServicePort(
        name=doc.get("name"),
        port=int(doc["port"]),
        protocol=str(doc.get("protocol", "TCP")),
        target_port=target if isinstance(target, int) else str(target),
    )


def _secret(doc: Doc) -> tuple[str, tuple[tuple[str, str], ...]]:
    items = {str(k): base64.b64decode(v).decode() for k, v in (doc.get("data") or {}).items()}
    items |= {str(k): str(v) for k, v in (doc.get("stringData") or {}).items()}
    return str(doc["metadata"]["name"]), tuple(sorted(items.items()))


def parse(text: str) -> Workload:
    """The Services, Indexed Jobs and Secrets of a multi-document YAML stream; a framework's
    resources (JobSet, LeaderWorkerSet, TrainJob, PyTorchJob, MPIJob, Volcano Job) become the
    Services and Jobs their controllers would make."""
    from tests.harness import frameworks  # it builds on this module's parsers

    docs = [d for d in yaml.safe_load_all(text) if d]
    services, jobs = frameworks.translate(docs)
    return Workload(
        services=tuple(_service(d) for d in docs if d.get("kind") == "Service") + services,
        jobs=tuple(_job(d) for d in docs if is_batch_job(d)) + jobs,
        secrets=tuple(_secret(d) for d in docs if d.get("kind") == "Secret"),
    )


def is_batch_job(doc: Doc) -> bool:
    """A batch/v1 Job (Volcano's Job has the same kind in another group)."""
    return doc.get("kind") == "Job" and str(doc.get("apiVersion", "batch/v1")) == "batch/v1"


def render(path: Path) -> str:
    """The YAML of a file, or of a kustomization directory rendered by `kubectl kustomize`."""
    path = Path(path)
    if path.is_dir():
        rendered = subprocess.run(
            ["kubectl", "kustomize", str(path)],
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        )
        return rendered.stdout
    return path.read_text()


def load(path: Path) -> Workload:
    """A YAML file, or a kustomization directory rendered by `kubectl kustomize`."""
    return parse(render(path))
