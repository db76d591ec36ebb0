"""A Kubernetes cluster in a box: Job controller, pods, endpoints and cluster DNS.

    with Cluster(tmp_path) as cluster:
        [run] = cluster.apply(workload.load(Path("k8s/examples/seed")))
        cluster.wait_job(run, timeout=60)
        print(cluster.logs(run.pod(0)))

`apply` creates the Indexed Job's first `parallelism` pods at once (one batch of namespaces);
a controller thread then reacts to pod changes: it starts pending indices as slots free up,
replaces failed pods up to `backoffLimit` (0 when the manifest has none: a test wants the first
failure to stand), and keeps DNS in step with the pods (see endpoints.py). Every wait is bounded
and wakes on the change it waits for, not on a timer.
"""

from __future__ import annotations

import queue
import re
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TypeVar

from tests.harness import leftovers
from tests.harness.changes import Changes
from tests.harness.clusterdns import ClusterDNS
from tests.harness.containers import write_shim
from tests.harness.dnsquery import DNSAnswer, query
from tests.harness.endpoints import Endpoints
from tests.harness.install import install
from tests.harness.jobrun import Delays, JobRun, make_pods
from tests.harness.netns import ClusterNetwork
from tests.harness.options import ClusterOptions
from tests.harness.pod import Pod
from tests.harness.workload import Workload

T = TypeVar("T")
_RETRY = "retry"  # a controller event that only asks for another round


class Cluster:
    def __init__(self, workdir: Path, options: ClusterOptions | None = None) -> None:
        self.workdir = Path(workdir)
        self.options = options or ClusterOptions()
        self.net = ClusterNetwork(ipv6=self.options.ipv6_only)
        self.node_resolv = self.options.node_resolv or (
            f"nameserver {self.net.node_dns_address}\nsearch node.internal\n"
        )
        self.dns = ClusterDNS(
            self.workdir / "dns",
            zone=self.options.zone,
            listen=self.net.dns_address,
            port=53,
            netns=self.net.node_ns,
            ttl=self.options.record_ttl,
            negative_ttl=self.options.negative_ttl,
        )
        self.node_dns = ClusterDNS(
            self.workdir / "node-dns",
            zone="node.internal",
            listen=self.net.node_dns_address,
            port=53,
            netns=self.net.node_ns,
            outside="static",
        )
        self.jobs: list[JobRun] = []
        self._changes = Changes()
        self._events: queue.Queue[Pod | str | None] = queue.Queue()
        self._teardowns: list[tuple[float, Pod]] = []  # (when, ended pod), in time order
        self.errors: list[str] = []  # controller errors (retried), shown by describe()
        self._controller = threading.Thread(target=self._control, name="controller", daemon=True)
        self._stopping = False
        # Not under workdir: pytest's tmp_path is root-only, and pods may run as another user.
        # One install per run (the registry's run directory is removed when the run ends).
        #: the run's copy of the agent (and the zipapp the peer-agent image carries)
        self.install_dir = leftovers.run_dir() / "agent"
        #: what the pods' PATH finds `peer-agent` in
        self.shim_dir = self.install_dir
        if self.options.agent_command:
            self.shim_dir = leftovers.run_dir() / f"bin-{self.net.prefix}"
        self.images_dir = leftovers.run_dir() / f"images-{self.net.prefix}"

    # ---- lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> Cluster:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        try:
            self.workdir.mkdir(parents=True, exist_ok=True)
            if not (self.install_dir / "peer-agent").exists():
                install(self.install_dir)
            if self.options.agent_command:
                leftovers.register_path(self.shim_dir)
                write_shim(self.shim_dir, self.options.agent_command)
            self.net.start()
            self.dns.start()
            self.node_dns.start()
            self._controller.start()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Kill every pod, then remove DNS, namespaces, /etc/netns entries and mount points."""
        self._stopping = True
        pods = [p for run in self.jobs for p in run.all_pods()]
        for pod in pods:
            pod.terminate(grace=0)
        deadline = time.monotonic() + 10
        for pod in pods:
            pod.thread.join(timeout=max(0.0, deadline - time.monotonic()))
        if self._controller.is_alive():
            self._events.put(None)
            self._controller.join(timeout=10)
        self.dns.stop()
        self.node_dns.stop()
        self.net.stop()
        for run in self.jobs:
            run.remove_mount_points()
        shutil.rmtree(self.images_dir, ignore_errors=True)
        if self.shim_dir != self.install_dir:  # the install stays for the run's other clusters
            shutil.rmtree(self.shim_dir, ignore_errors=True)
            leftovers.unregister_path(self.shim_dir)

    # ---- creating workloads ----------------------------------------------------------------

    def apply(
        self,
        workload: Workload,
        *,
        start_delays: Delays = None,
        pull_delays: Delays = None,
        ping_group_range: str | None = None,
    ) -> list[JobRun]:
        """Create the workload's Services and Indexed Jobs; pods start at once.

        start_delays[index]: seconds before that index's pod gets a sandbox (scheduling skew).
        pull_delays[index]: seconds between its sandbox (address; published if the Service
        publishes not-ready addresses) and its first container (image pull, slow init).
        Both may be a mapping or a function of the index.
        """
        runs: list[JobRun] = []
        for job in workload.jobs:
            service = workload.service_for(job)
            run = JobRun(
                job=job,
                service=service,
                workload=workload,
                cluster_workdir=self.workdir,
                shim_dir=self.shim_dir,
                image_files=self._image_files(),
                podman=self.options.podman,
                zone=self.options.zone,
                dns_address=self.net.dns_address,
                node_resolv=self.node_resolv,
                ping_group_range=ping_group_range or self.options.ping_group_range,
                probe_period=self.options.probe_period,
                start_delays=start_delays,
                pull_delays=pull_delays,
            )
            if service is not None:
                # One Service's endpoints span every Job whose pods it selects (a JobSet's
                # child Jobs, LWS groups, an MPIJob's launcher and workers).
                run.endpoints = next(
                    (r.endpoints for r in (*self.jobs, *runs) if r.service == service),
                    None,
                ) or Endpoints(self.dns, service, job, self.options.publish_delay)
            # Pods are made before the controller knows the run, so it cannot double-start an
            # index; they start once it does, so their first change is observed.
            pods = make_pods(run, self.net, run.pending_indices(), self._on_change)
            with self._changes.lock:
                self.jobs.append(run)
            for pod in pods:
                pod.start()
            runs.append(run)
        return runs

    def _image_files(self) -> dict[str, tuple[tuple[Path, str], ...]]:
        files: dict[str, tuple[tuple[Path, str], ...]] = {
            "peer-agent": ((self.install_dir / "opt", "/opt/peer-agent"),)
        }
        for n, (repo, source, target) in enumerate(self.options.image_files):
            files[repo] = (*files.get(repo, ()), (self._staged(n, source), target))
        return files

    def _staged(self, n: int, source: Path) -> Path:
        """A copy of an image's files in the run directory, as the agent's install is: the
        checkout may be where the pods' user cannot go, and a non-root container's view of a
        blocked directory (/root) is an empty tmpfs (see containers.python_mounts)."""
        copy = self.images_dir / str(n)
        if not copy.exists():
            shutil.copytree(source, copy)
            for path in (copy, *copy.rglob("*")):
                readable = 0o555 if path.is_dir() else 0o444
                path.chmod(path.stat().st_mode | readable)
        return copy

    def _start_pods(self, run: JobRun, indices: list[int]) -> list[Pod]:
        pods = make_pods(run, self.net, indices, self._on_change)
        for pod in pods:
            pod.start()
        return pods

    # ---- pod changes -----------------------------------------------------------------------

    def _on_change(self, pod: Pod) -> None:
        now = time.monotonic()
        for run in self.jobs:
            if run.owns(pod) and run.endpoints is not None:
                run.endpoints.observe(pod, now)
        self._events.put(pod)
        self._bump()

    def _bump(self) -> None:
        self._changes.bump()

    def _control(self) -> None:
        """Job controller and DNS publisher: one thread, woken by pod changes or DNS deadlines."""
        while True:
            now = time.monotonic()
            deadlines = [
                d for r in self.jobs if r.endpoints for d in [r.endpoints.next_change()] if d
            ]
            deadlines += [when for when, _ in self._teardowns[:1]]
            timeout = max(0.0, min(deadlines) - now) if deadlines else None
            try:
                event = self._events.get(timeout=timeout)
            except queue.Empty:
                event = None
            else:
                if event is None:
                    return
            try:
                self._tear_down_sandboxes(time.monotonic())
                for run in list(self.jobs):
                    if not self._stopping:
                        self._reconcile(run)
                    if run.endpoints is not None:
                        run.endpoints.sync(time.monotonic())
            except Exception as exc:  # keep controlling; the next round retries the sync
                self.errors.append(f"{time.monotonic():.3f} {exc!r}")
                self._events.put(_RETRY)
                time.sleep(0.05)
            self._bump()

    def _tear_down_sandboxes(self, now: float) -> None:
        due = [pod for when, pod in self._teardowns if when <= now]
        self._teardowns = [(when, pod) for when, pod in self._teardowns if when > now]
        if due:
            self.net.remove_pods([pod.spec.net for pod in due])

    def _reconcile(self, run: JobRun) -> None:
        for pod in run.newly_ended():
            # The sandbox goes (now or after the kubelet lag): its address stops answering.
            self._teardowns.append((time.monotonic() + self.options.sandbox_teardown_delay, pod))
            if not run.count_end(pod):
                self._start_pods(run, [pod.index])  # a retry for that index, with a new address
        if run.status == "Failed":
            # The Job controller deletes them as any delete does: SIGTERM, then the pod's
            # terminationGracePeriodSeconds before SIGKILL (pods that end at SIGTERM end now).
            for pod in run.active():
                pod.terminate(grace=pod.spec.job.template.termination_grace)
            return
        pending = run.pending_indices()
        if pending:
            self._start_pods(run, pending)

    # ---- operations ------------------------------------------------------------------------

    def replace_pod(self, pod: Pod, grace: float = 0.0) -> Pod:
        """Delete pod; its index gets a new pod with the same hostname and a new address.

        podReplacementPolicy TerminatingOrFailed (the default) creates the new pod while the old
        one terminates; `Failed` waits until it has ended.
        """
        run = self.job_of(pod)
        run.mark_replaced(pod)
        pod.terminate(grace)
        if run.job.pod_replacement_policy == "Failed":
            self.wait_for(lambda: pod.ended, grace + 15, f"{pod.name} to end")
        [new] = self._start_pods(run, [pod.index])  # the index was reserved by mark_replaced
        return new

    def kill_pod(self, pod: Pod, grace: float = 0.0) -> None:
        """Delete pod as an eviction would: it fails, and counts against backoffLimit."""
        pod.terminate(grace)

    def job_of(self, pod: Pod) -> JobRun:
        for run in self.jobs:
            if run.owns(pod):
                return run
        raise KeyError(pod.name)

    def pod(self, name: str) -> Pod:
        for run in self.jobs:
            for pod in run.all_pods():
                if pod.name == name:
                    return pod
        raise KeyError(name)

    def logs(self, pod: Pod | str, container: str | None = None) -> str:
        """`kubectl logs POD [-c CONTAINER]`: stdout and stderr as written, in order."""
        pod = self.pod(pod) if isinstance(pod, str) else pod
        name = container or self.job_of(pod).job.template.containers[0].name
        path = pod.log_path(name)
        return path.read_text(errors="replace") if path.exists() else ""

    def exec(self, pod: Pod, argv: list[str], timeout: float = 30.0) -> tuple[int, str]:
        """`kubectl exec POD -- ARGV` in the first container's environment: (code, output)."""
        return self.job_of(pod).exec(pod, argv, timeout)

    def resolve(self, name: str, rdtype: str = "A") -> DNSAnswer:
        """Ask cluster DNS from the node, as a pod would (absolute name, no search list)."""
        return query(self.net.node_ns, self.net.dns_address, 53, name, rdtype)

    def dns_queries(self) -> int:
        return self.dns.queries()

    # ---- waiting ---------------------------------------------------------------------------

    def wait_for(self, predicate: Callable[[], T], timeout: float, what: str) -> T:
        """Until predicate() is truthy, woken by every pod and DNS change; bounded."""
        return self._changes.wait_for(predicate, timeout, what, self.describe)

    def wait_job(self, run: JobRun, timeout: float) -> str:
        """Until the Job is Complete or Failed; returns that status."""
        return self.wait_for(
            lambda: run.status if run.status in ("Complete", "Failed") else "",
            timeout,
            f"Job {run.job.name} to finish",
        )

    def wait_pod(self, pod: Pod, timeout: float, *, phase: str | None = None) -> Pod:
        """Until the pod has ended (or reached `phase`)."""
        want = (lambda: pod.phase == phase) if phase else (lambda: pod.ended)
        self.wait_for(want, timeout, f"{pod.name} to be {phase or 'ended'}")
        return pod

    def wait_log(self, pod: Pod, pattern: str, timeout: float, container: str | None = None) -> str:
        """Until the container's log matches the regex; returns the matching line.

        Logs are files written by the process, so this one polls them (every 20 ms).
        """
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            for line in self.logs(pod, container).splitlines():
                if regex.search(line):
                    return line
            if time.monotonic() > deadline:
                raise TimeoutError(f"no line matching {pattern!r} in {pod.name} within {timeout}s")
            time.sleep(0.02)

    def wait_dns(
        self, name: str, predicate: Callable[[DNSAnswer], bool], timeout: float, rdtype: str = "A"
    ) -> DNSAnswer:
        """Until cluster DNS's answer for name satisfies predicate (re-asked on each change)."""

        def answer() -> DNSAnswer | None:
            got = self.resolve(name, rdtype)
            return got if predicate(got) else None

        found = self.wait_for(answer, timeout, f"DNS {rdtype} {name}")
        assert found is not None
        return found

    def describe(self) -> str:
        pods = [p for run in self.jobs for p in run.all_pods()]
        text = "pods: " + ", ".join(repr(p) for p in pods)
        if self.errors:
            text += "; controller errors: " + "; ".join(self.errors[-5:])
        return text
