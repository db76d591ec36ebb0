"""One pod's life, as kubelet runs it: init containers in order, then the main containers.

A Pod is driven by its own thread (`run`). Init containers run one after the other; a native
sidecar (init container with `restartPolicy: Always`) is started, its startupProbe awaited, and
kept running (restarted if it dies) until the main containers are done, then stopped. The pod
is Ready when its main containers have started and their readinessProbes pass; it ends
Succeeded when every main container exits 0, else Failed. Every change is reported to the
cluster through `on_change`, which wakes whoever awaits it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from tests.harness import leftovers
from tests.harness.cgroups import CpuCgroup
from tests.harness.containers import (
    argv_of,
    expand,
    image_repo,
    launch_argv,
    merged_security,
)
from tests.harness.leftovers import ETC_NETNS
from tests.harness.netns import PodNet
from tests.harness.podman import PodmanRuntime
from tests.harness.probes import probe_ok
from tests.harness.workload import Container, Job, Probe

PENDING, RUNNING, SUCCEEDED, FAILED = "Pending", "Running", "Succeeded", "Failed"
SIDECAR_RESTART_DELAY = 1.0


@dataclass(frozen=True)
class PodSpec:
    """What the Job controller decided for this pod (everything but its runtime state)."""

    name: str
    job: Job
    index: int
    hostname: str
    net: PodNet
    env: Mapping[str, str]  # base environment, before each container's own env
    field_values: Mapping[str, str]  # Downward API fieldPath -> value
    secrets: Mapping[tuple[str, str], str]
    logdir: Path
    volumes: Mapping[str, Path]  # emptyDir name -> host directory
    start_delay: float  # scheduling: no sandbox, no address yet
    pull_delay: float  # image pull: sandbox up (address, maybe published), no container yet
    probe_period: float | None
    stash: Path  # empty host directory for python_mounts (see containers.py)
    image_files: Mapping[str, tuple[tuple[Path, str], ...]]  # image repo -> (host dir, path)
    podman: PodmanRuntime | None = None  # runs the images it lists as real containers


class Pod:
    def __init__(self, spec: PodSpec, on_change: Callable[[Pod], None]) -> None:
        self.spec = spec
        self.name = spec.name
        self.index = spec.index
        self.hostname = spec.hostname
        self.address = spec.net.address
        self.phase = PENDING
        self.ready = False
        self.started = False  # sandbox up: the pod has its address
        self.terminating = False
        self.started_at: float | None = None
        self.ready_at: float | None = None
        self.ended_at: float | None = None
        self.exit_codes: dict[str, int] = {}
        self.restarts: dict[str, int] = {}
        #: user + system CPU seconds of each main container's process tree (wait4), at its end
        self.cpu_seconds: dict[str, float] = {}
        #: each CPU-limited container's quota and throttling counters (cgroups.CpuCgroup.stat),
        #: read when the pod ends, just before its cgroups are removed
        self.cpu_quota: dict[str, tuple[int, int]] = {}
        self.cpu_stat: dict[str, dict[str, int]] = {}
        self._cgroups: dict[str, CpuCgroup] = {}
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._scheduled = threading.Event()  # start_now: the start delay is over
        self._mains_done = threading.Event()  # sidecars are stopped, not restarted, after it
        self._on_change = on_change
        self.thread = threading.Thread(target=self._run, name=f"pod-{self.name}", daemon=True)
        spec.logdir.mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"<Pod {self.name} {self.address} {self.phase}{' ready' if self.ready else ''}>"

    @property
    def ended(self) -> bool:
        return self.phase in (SUCCEEDED, FAILED)

    def log_path(self, container: str) -> Path:
        return self.spec.logdir / f"{container}.log"

    def start(self) -> None:
        self.thread.start()

    def start_now(self) -> None:
        """End the pod's start delay now (a test's own condition, not the clock, schedules it)."""
        self._scheduled.set()

    # ---- the pod's thread ------------------------------------------------------------------

    def _run(self) -> None:
        try:
            if self.spec.start_delay:
                self._scheduled.wait(self.spec.start_delay)
                if self._stop.is_set():
                    self._finish(FAILED)
                    return
            self.started = True
            self.started_at = time.monotonic()
            self._changed()
            if self.spec.pull_delay and self._stop.wait(self.spec.pull_delay):
                self._finish(FAILED)
                return
            self._finish(self._lifecycle())
        except Exception as exc:  # a harness bug must not leave the pod Pending forever
            self.log_path("_harness").write_text(f"harness error: {exc!r}\n")
            self._finish(FAILED)

    def _lifecycle(self) -> str:
        template = self.spec.job.template
        sidecars: list[threading.Thread] = []
        for container in template.init_containers:
            if self._stop.is_set():
                return FAILED
            if container.is_sidecar:
                sidecars.append(self._start_sidecar(container))
                if not self._await_probe(container, container.startup_probe):
                    return FAILED
                continue
            if self._run_to_end(container) != 0:
                return FAILED
        if self._stop.is_set():
            return FAILED
        mains = [self._spawn(c) for c in template.containers]
        self._update(phase=RUNNING)
        readiness = [c for c in template.containers if c.readiness_probe is not None]
        if all(self._await_probe(c, c.readiness_probe) for c in readiness):
            self._update(ready=True)
        pairs = zip(template.containers, mains, strict=True)
        codes = [self._wait(container.name, proc) for container, proc in pairs]
        for container, code in zip(template.containers, codes, strict=True):
            self.exit_codes[container.name] = code
        self._update(ready=False)
        self._stop_sidecars()
        for thread in sidecars:
            thread.join(timeout=10)
        ok = all(code == 0 for code in codes) and not self.terminating
        return SUCCEEDED if ok else FAILED

    def _run_to_end(self, container: Container) -> int:
        code = self._spawn(container).wait()
        self.exit_codes[container.name] = code
        self._changed()
        return code

    def _start_sidecar(self, container: Container) -> threading.Thread:
        first = self._spawn(container)

        def keep_running() -> None:
            proc = first
            while True:
                code = proc.wait()
                self.exit_codes[container.name] = code
                if self._stop.is_set() or self.ended or self._mains_done.is_set():
                    return
                # restartPolicy: Always, with a short fixed back-off instead of kubelet's 10 s+.
                if self._stop.wait(SIDECAR_RESTART_DELAY) or self._mains_done.is_set():
                    return
                self.restarts[container.name] = self.restarts.get(container.name, 0) + 1
                proc = self._spawn(container)

        thread = threading.Thread(target=keep_running, daemon=True, name=f"sidecar-{self.name}")
        thread.start()
        return thread

    def _stop_sidecars(self) -> None:
        self._mains_done.set()
        sidecars = {c.name for c in self.spec.job.template.init_containers if c.is_sidecar}
        for name in sidecars:
            self._signal(name, signal.SIGTERM)

    def _await_probe(self, container: Container, probe: Probe | None) -> bool:
        if probe is None:
            return True
        period = self.spec.probe_period or probe.period
        if self._stop.wait(probe.initial_delay):
            return False
        while not self._stop.is_set():
            proc = self._procs.get(container.name)
            if proc is not None and proc.poll() is not None and not container.is_sidecar:
                return False
            if probe_ok(probe, container, self.spec.net, timeout=min(1.0, period)):
                return True
            if self._stop.wait(period):
                return False
        return False

    # ---- processes -------------------------------------------------------------------------

    def container_env(self, container: Container) -> dict[str, str]:
        env = dict(self.spec.env)
        for var in container.env:
            if var.field_path is not None:
                value = self.spec.field_values.get(var.field_path)
                if value is None:
                    raise ValueError(f"fieldRef {var.field_path} is not modelled")
            elif var.secret is not None:
                value = self.spec.secrets[var.secret]
            else:
                value = expand(var.value or "", env)
            env[var.name] = value
        return env

    def _podman_image(self, container: Container) -> str | None:
        podman = self.spec.podman
        return podman.image_for(image_repo(container.image)) if podman else None

    def _container_name(self, container: Container) -> str:
        return f"{self.spec.net.netns}-{container.name}"

    def command_argv(self, container: Container, argv: list[str] | None = None) -> list[str]:
        """The host command line for container (or for argv run like `kubectl exec`)."""
        env = self.container_env(container)
        security = merged_security(self.spec.job.template.security, container.security)
        volumes = [(self.spec.volumes[name], path) for name, path in container.mounts]
        image = self._podman_image(container)
        if image is not None and argv is None:
            assert self.spec.podman is not None
            return self.spec.podman.run_argv(
                name=self._container_name(container),
                image=image,
                netns=self.spec.net.netns,
                hostname=self.hostname,
                etc=ETC_NETNS / self.spec.net.netns,
                # The image has its own PATH and HOME, unless the manifest sets them.
                env={
                    k: v
                    for k, v in env.items()
                    if k not in ("PATH", "HOME") or any(e.name == k for e in container.env)
                },
                security=security,
                mounts=volumes,
                command=[expand(a, env) for a in container.command],
                args=[expand(a, env) for a in container.args],
            )
        mounts = [*self.spec.image_files.get(image_repo(container.image), ()), *volumes]
        return launch_argv(
            self.spec.net.netns,
            self.hostname,
            argv if argv is not None else argv_of(container, env),
            security,
            mounts,
            self.spec.stash,
        )

    def _wait(self, name: str, proc: subprocess.Popen[bytes]) -> int:
        """Its exit code; notes its CPU time (wait4: it and the children it waited for)."""
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        except ChildProcessError:  # a concurrent poll() reaped it first: no figure
            return proc.wait()
        proc.returncode = os.waitstatus_to_exitcode(status)
        self.cpu_seconds[name] = usage.ru_utime + usage.ru_stime
        return proc.returncode

    def _cgroup(self, container: Container) -> CpuCgroup | None:
        """The container's CPU cgroup (made at its first start), or None without a limit."""
        if container.cpu_limit is None:
            return None
        if container.name not in self._cgroups:
            cgroup = CpuCgroup(f"{self.spec.net.netns}-{container.name}", container.cpu_limit)
            self._cgroups[container.name] = cgroup
            self.cpu_quota[container.name] = cgroup.quota()
        return self._cgroups[container.name]

    def _spawn(self, container: Container) -> subprocess.Popen[bytes]:
        argv = self.command_argv(container)
        podman = self.spec.podman if self._podman_image(container) else None
        # (a container under podman gets no CPU limit here: podman would need its own cgroup)
        if podman is None and (cgroup := self._cgroup(container)) is not None:
            argv = cgroup.enter_argv(argv)
        with self._lock, self.log_path(container.name).open("ab") as log:
            proc = subprocess.Popen(
                argv,
                env={**os.environ, **dict(podman.env)} if podman else self.container_env(container),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd="/",
                start_new_session=True,  # its own process group: kill reaches its children
            )
            self._procs[container.name] = proc
        leftovers.register_pid(proc.pid)
        self._changed()
        return proc

    def _signal(self, name: str, sig: int) -> None:
        proc = self._procs.get(name)
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, sig)

    def running(self, container: str) -> bool:
        proc = self._procs.get(container)
        return proc is not None and proc.poll() is None

    # ---- termination -----------------------------------------------------------------------

    def terminate(self, grace: float) -> None:
        """Delete the pod: SIGTERM every container, SIGKILL after grace (does not wait)."""
        with self._lock:
            if self.terminating or self.ended:
                return
            self.terminating = True
        self._stop.set()
        self._scheduled.set()  # a pod deleted while it waits to be scheduled ends now
        self._changed()
        for name in list(self._procs):
            self._signal(name, signal.SIGTERM)
        if grace > 0:
            timer = threading.Timer(grace, self._kill_all)
            timer.daemon = True
            timer.start()
        else:
            self._kill_all()

    def _kill_all(self) -> None:
        for name in list(self._procs):
            self._signal(name, signal.SIGKILL)
        # Anything else that lives in the sandbox dies with it.
        leftovers.kill_netns_processes([self.spec.net.netns])

    def _finish(self, phase: str) -> None:
        self._stop.set()
        self._kill_all()
        for proc in self._procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
            leftovers.unregister_pid(proc.pid)
        if self.spec.podman is not None:
            for container in self._podman_containers():
                self.spec.podman.remove(self._container_name(container))
        for name, cgroup in self._cgroups.items():
            self.cpu_stat[name] = cgroup.stat()
            cgroup.remove()
        self.ended_at = time.monotonic()
        self._update(phase=phase, ready=False)

    def _podman_containers(self) -> list[Container]:
        template = self.spec.job.template
        both = (*template.init_containers, *template.containers)
        return [c for c in both if c.name in self._procs and self._podman_image(c)]

    def _update(self, *, phase: str | None = None, ready: bool | None = None) -> None:
        if phase is not None:
            self.phase = phase
        if ready is not None:
            if ready and not self.ready:
                self.ready_at = time.monotonic()
            self.ready = ready
        self._changed()

    def _changed(self) -> None:
        self._on_change(self)
