"""One Indexed Job in the cluster: its pods per index, its status, and how its pods are made.

The Job controller's bookkeeping (which index succeeded, how many failures count against
`backoffLimit`, which pods were replaced on purpose) lives here; cluster.py decides when to act.
Pods are made in batches: one `ip -batch` creates all their namespaces, then each gets the
files kubelet writes and the environment the Job controller injects.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tests.harness import kubelet_files
from tests.harness.containers import BASE_PATH, image_repo
from tests.harness.endpoints import Endpoints
from tests.harness.netns import GATEWAY, ClusterNetwork
from tests.harness.nsutil import write_sysctl
from tests.harness.pod import SUCCEEDED, Pod, PodSpec
from tests.harness.podman import PodmanRuntime
from tests.harness.workload import Job, Service, Workload, WorkloadError

PING_SYSCTL = "net.ipv4.ping_group_range"
Delays = Mapping[int, float] | Callable[[int], float] | None


def _delay(delays: Delays, index: int) -> float:
    if delays is None:
        return 0.0
    if callable(delays):
        return float(delays(index))
    return float(delays.get(index, 0.0))


@dataclass
class JobRun:
    job: Job
    service: Service | None
    workload: Workload
    cluster_workdir: Path
    shim_dir: Path
    image_files: Mapping[str, tuple[tuple[Path, str], ...]]
    podman: PodmanRuntime | None
    zone: str
    dns_address: str
    node_resolv: str
    ping_group_range: str
    probe_period: float | None
    start_delays: Delays = None
    pull_delays: Delays = None
    endpoints: Endpoints | None = None
    uid: str = field(default_factory=lambda: str(uuid.uuid4()))
    pods: dict[int, list[Pod]] = field(default_factory=dict)
    succeeded: set[int] = field(default_factory=set)
    failures: int = 0
    failed: bool = False
    lock: threading.RLock = field(default_factory=threading.RLock)
    _handled: set[str] = field(default_factory=set)
    _replaced: set[str] = field(default_factory=set)
    _reserved: set[int] = field(default_factory=set)
    _mount_points: list[Path] = field(default_factory=list)

    def __post_init__(self) -> None:
        template = self.job.template
        for container in (*template.init_containers, *template.containers):
            targets = [t for _, t in container.mounts]
            targets += [t for _, t in self.image_files.get(image_repo(container.image), ())]
            for target in targets:
                path = Path(target)
                if not path.exists() and path not in self._mount_points:
                    self._mount_points.append(path)

    # ---- status ----------------------------------------------------------------------------

    @property
    def status(self) -> str:
        if self.failed:
            return "Failed"
        if len(self.succeeded) == self.job.completions:
            return "Complete"
        return "Running"

    def pod(self, index: int) -> Pod:
        """The newest pod of the index (the replacement, once a pod was replaced)."""
        return self.pods[index][-1]

    def all_pods(self) -> list[Pod]:
        with self.lock:
            return [p for pods in self.pods.values() for p in pods]

    def active(self) -> list[Pod]:
        return [p for p in self.all_pods() if not p.ended]

    def owns(self, pod: Pod) -> bool:
        return pod in self.pods.get(pod.index, ())

    # ---- controller bookkeeping ------------------------------------------------------------

    def newly_ended(self) -> list[Pod]:
        with self.lock:
            ended = [p for p in self.all_pods() if p.ended and p.name not in self._handled]
            self._handled.update(p.name for p in ended)
        return ended

    def count_end(self, pod: Pod) -> bool:
        """Account for an ended pod; False when the index needs a retry pod now."""
        with self.lock:
            if pod.phase == SUCCEEDED:
                self.succeeded.add(pod.index)
                return True
            if pod.name in self._replaced or self.failed:
                return True
            self.failures += 1
            limit = self.job.backoff_limit if self.job.backoff_limit is not None else 0
            if self.failures > limit:
                self.failed = True
                return True
            self._reserved.add(pod.index)
            return False

    def mark_replaced(self, pod: Pod) -> None:
        with self.lock:
            self._replaced.add(pod.name)
            self._reserved.add(pod.index)

    def pending_indices(self) -> list[int]:
        """Indices to start now: not done, no live pod, within `parallelism`; reserved."""
        with self.lock:
            if self.status != "Running":
                return []
            # A pod that ended but is not accounted for yet still holds its index.
            unsettled = {p.index for p in self.all_pods() if p.name not in self._handled}
            busy = unsettled | self._reserved
            slots = self.job.parallelism - len(busy)
            todo = [
                i for i in range(self.job.completions) if i not in busy and i not in self.succeeded
            ][: max(0, slots)]
            self._reserved.update(todo)
            return todo

    # ---- kubectl exec ----------------------------------------------------------------------

    def exec(self, pod: Pod, argv: list[str], timeout: float) -> tuple[int, str]:
        container = self.job.template.containers[0]
        proc = subprocess.run(
            pod.command_argv(container, argv),
            env=pod.container_env(container),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=timeout,
            cwd="/",
        )
        return proc.returncode, proc.stdout.decode(errors="replace")

    def remove_mount_points(self) -> None:
        """Mount points the harness had to create on the host for emptyDirs."""
        for path in reversed(self._mount_points):
            with contextlib.suppress(OSError):  # not empty / not ours: leave it
                path.rmdir()


def _field_values(run: JobRun, name: str, index: int, address: str) -> dict[str, str]:
    """Downward API: every fieldPath a Job pod's env may name."""
    job = run.job
    labels = dict(job.template.labels)
    labels |= {
        "batch.kubernetes.io/controller-uid": run.uid,
        "batch.kubernetes.io/job-name": job.name,
        "controller-uid": run.uid,
        "job-name": job.name,
        "batch.kubernetes.io/job-completion-index": str(index),
    }
    annotations = {"batch.kubernetes.io/job-completion-index": str(index)}
    annotations |= dict(job.annotations)
    if job.index_label is not None:
        labels[job.index_label] = str(index)
    values = {
        "metadata.name": name,
        "metadata.namespace": job.namespace,
        "metadata.uid": str(uuid.uuid4()),
        "spec.nodeName": "node",
        "spec.serviceAccountName": "default",
        "status.hostIP": GATEWAY,
        "status.podIP": address,
        "status.podIPs": address,
    }
    values |= {f"metadata.labels['{k}']": v for k, v in labels.items()}
    values |= {f"metadata.annotations['{k}']": v for k, v in annotations.items()}
    return values


def make_pods(
    run: JobRun, net: ClusterNetwork, indices: list[int], on_change: Callable[[Pod], None]
) -> list[Pod]:
    """Create (not start) one pod per index: namespace, address, /etc files, env, volumes."""
    job, template = run.job, run.job.template
    sysctls = dict(template.sysctls)
    ping_range = sysctls.pop(PING_SYSCTL, run.ping_group_range)
    names = [f"{job.name}-{i}-{secrets.token_hex(3)[:5]}" for i in indices]
    nets = net.add_pods(names, [ping_range] * len(names))
    secrets_map = {
        (secret, key): value for secret, items in run.workload.secrets for key, value in items
    }
    pods = []
    for index, name, pod_net in zip(indices, names, nets, strict=True):
        for key, value in sysctls.items():
            write_sysctl(pod_net.netns, key, value)
        hostname = job.hostname(index)
        etc = net.etc_dir(pod_net)
        (etc / "hosts").write_text(
            kubelet_files.hosts(
                pod_net.address, hostname, template.subdomain, job.namespace, run.zone
            )
        )
        (etc / "resolv.conf").write_text(
            kubelet_files.resolv_conf(
                template.dns_policy,
                template.dns_config,
                namespace=job.namespace,
                zone=run.zone,
                cluster_dns=run.dns_address,
                node_resolv=run.node_resolv,
            )
        )
        poddir = run.cluster_workdir / "pods" / name
        volumes = {}
        for volume in template.volumes:
            path = poddir / "volumes" / volume
            path.mkdir(parents=True, exist_ok=True)
            os.chmod(path, 0o777)  # emptyDir is world-writable, as kubelet makes it
            volumes[volume] = path
        for volume, files in template.files:  # a ConfigMap: read-only for the pod
            path = poddir / "volumes" / volume
            path.mkdir(parents=True, exist_ok=True)
            path.chmod(0o755)
            for file_name, content in files:
                (path / file_name).write_text(content)
                (path / file_name).chmod(0o444)
            volumes[volume] = path
        for volume, secret, mode in template.secret_volumes:  # read-only, one file a key
            path = poddir / "volumes" / volume
            path.mkdir(parents=True, exist_ok=True)
            path.chmod(0o755)
            items = [(key, v) for (name_of, key), v in secrets_map.items() if name_of == secret]
            if not items:
                raise WorkloadError(f"volume {volume}: secret {secret} is not in the workload")
            for key, content in items:
                (path / key).write_text(content)
                (path / key).chmod(mode)
            volumes[volume] = path
        env = {"PATH": f"{run.shim_dir}:{BASE_PATH}", "HOSTNAME": hostname, "HOME": "/root"}
        if job.completion_index_env:
            env["JOB_COMPLETION_INDEX"] = str(index)
        spec = PodSpec(
            name=name,
            job=job,
            index=index,
            hostname=hostname,
            net=pod_net,
            env=env,
            field_values=_field_values(run, name, index, pod_net.address),
            secrets=secrets_map,
            logdir=poddir / "logs",
            volumes=volumes,
            start_delay=_delay(run.start_delays, index),
            pull_delay=_delay(run.pull_delays, index),
            probe_period=run.probe_period,
            stash=run.shim_dir / "stash",
            image_files=run.image_files,
            podman=run.podman,
        )
        pods.append(Pod(spec, on_change))
    with run.lock:
        for pod in pods:
            run.pods.setdefault(pod.index, []).append(pod)
            run._reserved.discard(pod.index)
    return pods
