"""Run one planned barrier in a fresh cluster in a box and record what every pod did.

The driver only acts and records; judging (hang, early, wrong release) is check.py's job, from
the record alone. Every pod's times are kept on the wall clock, the clock of the agents' JSON log
timestamps, so the two can be compared (pods and agents share this host's clock).
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from tests.harness.cluster import Cluster
from tests.harness.jobrun import JobRun
from tests.harness.options import ClusterOptions
from tests.harness.pod import Pod
from tests.harness.variants import with_args, with_backoff_limit, with_completions
from tests.harness.workload import Workload
from tests.soak.logs import events
from tests.soak.plan import BarrierPlan, Restart, Withdrawal

AGENT_TIMEOUT = 120  # s; longer than any bound, so a stuck agent shows as a hang, not exit 3
STARVED_LIMIT = 4  # a barrier whose agents are not all up by the bound gets up to 4x it
KILL_MARGIN = 0.15  # s; the last kill happens this long before the holdout pod is scheduled


@dataclass
class Instance:
    """One pod of the Job (a replaced index has several), as the soak saw it."""

    index: int
    name: str
    address: str
    started: float | None  # wall clock: sandbox (address) up
    ended: float | None
    phase: str
    exit_code: int | None
    killed: float | None  # wall clock: when the soak killed its agent (None: never)
    log: str


@dataclass
class BarrierRun:
    plan: BarrierPlan
    status: str  # the Job's: Complete, Failed, or Running when the bound passed
    elapsed: float  # Job created -> Job finished (or the bound)
    instances: list[Instance]
    restarts_done: int = 0
    restarts_skipped: int = 0  # the holdout was scheduled before the kill could land
    withdrawals_done: int = 0
    notes: list[str] = field(default_factory=list)


def workload_for(plan: BarrierPlan, base: Workload) -> Workload:
    """The base example with N pods, JSON logs, `wait` mode (the container's exit code is the
    agent's) and a backoffLimit that allows exactly the planned kills, so an unplanned failure
    fails the Job at once instead of being retried out of sight."""
    wl = with_backoff_limit(with_completions(base, plan.peers), len(plan.restarts))
    jobs = tuple(replace(j, pod_replacement_policy="Failed") for j in wl.jobs)
    wl = replace(wl, jobs=jobs)
    container = wl.job().template.containers[0].name
    args = ("wait", "--log-format", "json", "--timeout", f"{AGENT_TIMEOUT}s")
    return with_args(wl, container, args)


def options_for(plan: BarrierPlan) -> ClusterOptions:
    return ClusterOptions(
        publish_delay=plan.publish_delay,
        negative_ttl=plan.negative_ttl,
        record_ttl=plan.record_ttl,
        sandbox_teardown_delay=plan.sandbox_teardown_delay,
    )


def run_barrier(plan: BarrierPlan, base: Workload, workdir: Path, bound: float) -> BarrierRun:
    """Create the Job, inject the planned faults, wait up to `bound` s; the cluster (pods,
    namespaces, DNS servers) is torn down on every way out."""
    with Cluster(workdir, options_for(plan)) as cluster:
        driver = _Driver(cluster, plan)
        driver.drive(workload_for(plan, base), bound)
    # Recorded after the cluster stopped: every pod has ended, so each record is final.
    return driver.record()


class _Driver:
    def __init__(self, cluster: Cluster, plan: BarrierPlan) -> None:
        self.cluster = cluster
        self.plan = plan
        # Pod times are monotonic; logs carry wall-clock stamps. One offset converts.
        self.wall_offset = time.time() - time.monotonic()
        self.run: JobRun | None = None
        self.status = "Running"
        self.elapsed = 0.0
        self.killed: dict[str, float] = {}
        self.restarts_done = self.restarts_skipped = self.withdrawals_done = 0
        self.notes: list[str] = []
        self.extended_to = 0.0  # monotonic; set when the bound was extended for starvation
        self._created: dict[int, int] = {}
        self._lock = threading.Lock()

    def _start_delay(self, index: int) -> float:
        """Scheduling delay of each new pod: the planned skew for the first pod of an index,
        the restart's delay for its replacement (called from the controller thread too)."""
        with self._lock:
            count = self._created.get(index, 0)
            self._created[index] = count + 1
        if count == 0:
            return self.plan.skews[index]
        return next((r.replacement_delay for r in self.plan.restarts if r.index == index), 0.0)

    # ---- the run ---------------------------------------------------------------------------

    def drive(self, wl: Workload, bound: float) -> None:
        container = wl.job().template.containers[0].name
        t0 = time.monotonic()
        [run] = self.cluster.apply(wl, start_delays=self._start_delay)
        self.run = run
        kills = list(self.plan.restarts)
        withdrawals: list[tuple[float, Withdrawal]] = [
            (t0 + w.at, w) for w in self.plan.withdrawals
        ]
        readds: list[tuple[float, str]] = []  # (when, fqdn)
        deadline = t0 + bound
        while True:
            now = time.monotonic()
            if run.status != "Running":
                self.status = run.status
                break
            if now >= deadline:
                if not self._extend(run, container, t0, bound, now):
                    break
                deadline = self.extended_to
            kills = [k for k in kills if not self._maybe_kill(run, k, container, t0, now)]
            for due, w in [x for x in withdrawals if x[0] <= now]:
                fqdn = self._withdraw(run, w)
                if fqdn is not None:  # else not published yet: try again on the next change
                    withdrawals.remove((due, w))
                    readds.append((now + w.duration, fqdn))
            for due, fqdn in [x for x in readds if x[0] <= now]:
                self._readd(run, fqdn)
                readds.remove((due, fqdn))
            # A withdrawal that is due waits for its name to be published: a DNS change,
            # which wakes the wait below like any pod change does.
            waiting = [self._fqdn(run, w) for d, w in withdrawals if d <= now]
            wake = [deadline, *(d for d, _ in withdrawals if d > now), *(d for d, _ in readds)]
            if kills:
                # Kill triggers are log lines, which nothing announces: look every 20 ms
                # (as the harness's own wait_log does) until the kill is done.
                wake.append(now + 0.02)
            self._await(functools.partial(self._step_due, run, waiting), min(wake) - now)
        self.elapsed = time.monotonic() - t0
        if self.extended_to:
            self.notes.append(f"starved: some agent was up late; bound {bound:g}s from its start")
        if run.status == "Running":
            self._diagnose(run)
        for _due, fqdn in readds:  # leave DNS as the endpoints say, for the record's sake
            self._readd(run, fqdn)
        if kills:
            self.notes.append(f"{len(kills)} planned restart(s) never triggered")

    def _extend(self, run: JobRun, container: str, t0: float, bound: float, now: float) -> bool:
        """Whether to wait on past the bound. Liveness is judged from the moment the last agent
        is up: on this 2-core machine other work can delay an agent's start by tens of
        seconds, which says nothing about the barrier. So the bound runs from the last agent's
        `start` line (looked for every second until all are up), up to STARVED_LIMIT bounds."""
        if now >= t0 + STARVED_LIMIT * bound:
            return False
        starts = []
        for pod in (run.pod(i) for i in range(self.plan.peers)):
            if pod.ended:
                continue
            first = next(
                (e for e in events(self.cluster.logs(pod)) if e.get("event") == "start"), None
            )
            if first is None:
                self.extended_to = now + 1.0
                return True
            starts.append(first["t"] - self.wall_offset)
        target = max(starts, default=0.0) + bound
        if now < target:
            self.extended_to = target
            return True
        return False

    def _step_due(self, run: JobRun, waiting: list[str]) -> bool:
        """The Job ended, or a name that a due withdrawal waits for is published."""
        published = self._desired(run) if waiting else {}
        return run.status != "Running" or any(name in published for name in waiting)

    def _await(self, predicate: Callable[[], bool], timeout: float) -> None:
        """Until predicate() or timeout, woken by every pod and DNS change in the cluster."""
        if timeout <= 0:
            return
        with contextlib.suppress(TimeoutError):  # timed out: the next planned step is due
            self.cluster.wait_for(predicate, timeout, "a soak step")

    def _diagnose(self, run: JobRun) -> None:
        """At the bound, before teardown: what DNS answers and what the controller hit, so a
        hang can be told apart from a DNS left wrong by the soak or the harness."""
        assert run.endpoints is not None
        want = self._desired(run)
        domain = run.endpoints.domain
        names = [f"{domain}.", *(f"{run.job.name}-{i}.{domain}." for i in range(self.plan.peers))]
        for name in names:
            got = self.cluster.resolve(name)
            shown = ",".join(sorted(got.values))
            expected = ",".join(sorted(r.split()[-1] for r in want.get(name, ())))
            self.notes.append(f"at the bound: {name} {got.rcode} {shown} (endpoints: {expected})")
        self.notes.append(f"at the bound: {self.cluster.describe()}")

    # ---- restarts --------------------------------------------------------------------------

    def _maybe_kill(
        self, run: JobRun, restart: Restart, container: str, t0: float, now: float
    ) -> bool:
        """Kill the victim once its trigger fires; True when this restart is settled."""
        victim = run.pod(restart.index)
        assert self.plan.holdout is not None
        holdout = run.pods[self.plan.holdout][0]
        if holdout.started:
            # Past this point a kill could race the release; the plan's margins make it rare.
            self.restarts_skipped += 1
            self.notes.append(f"restart of pod {restart.index} skipped: the holdout started")
            return True
        if victim.ended:
            self.notes.append(f"pod {restart.index} ended before its planned restart")
            return True
        cap = t0 + self.plan.skews[self.plan.holdout] - KILL_MARGIN
        if not (now >= cap and victim.started) and not self._triggered(victim, restart, container):
            return False
        self.killed[victim.name] = time.time()
        self.cluster.kill_pod(victim)
        self.restarts_done += 1
        return True

    def _triggered(self, victim: Pod, restart: Restart, container: str) -> bool:
        if not victim.running(container):
            return False
        if restart.after_reached < 0:
            return True
        log = self.cluster.logs(victim)
        if restart.after_reached == 0:
            return '"event": "start"' in log
        return log.count('"event": "reached"') >= restart.after_reached

    # ---- DNS withdrawals -------------------------------------------------------------------

    def _fqdn(self, run: JobRun, w: Withdrawal) -> str:
        assert run.endpoints is not None
        domain = run.endpoints.domain
        return f"{domain}." if w.target == "service" else f"{run.job.name}-{w.index}.{domain}."

    def _desired(self, run: JobRun) -> dict[str, tuple[str, ...]]:
        endpoints = run.endpoints
        assert endpoints is not None
        return endpoints.desired(endpoints.published(time.monotonic()))

    def _withdraw(self, run: JobRun, w: Withdrawal) -> str | None:
        fqdn = self._fqdn(run, w)
        if fqdn not in self._desired(run):
            return None
        self.cluster.dns.remove(fqdn)
        self.withdrawals_done += 1
        return fqdn

    def _readd(self, run: JobRun, fqdn: str) -> None:
        """Put the name back as the endpoints now want it. The controller may sync the same
        name meanwhile; writing until two reads of the wanted records agree keeps an older
        answer from overwriting its newer one."""
        for _ in range(5):
            want = self._desired(run).get(fqdn)
            if want is None:
                return  # withdrawn by the endpoints themselves meanwhile
            self.cluster.dns.set_many({fqdn: want})
            if self._desired(run).get(fqdn) == want:
                return
        self.notes.append(f"{fqdn}: records kept changing while re-adding")

    # ---- the record ------------------------------------------------------------------------

    def record(self) -> BarrierRun:
        run = self.run
        instances = []
        if run is not None:
            container = run.job.template.containers[0].name
            for pod in sorted(run.all_pods(), key=lambda p: (p.index, p.started_at or 0.0)):
                instances.append(self._instance(pod, container))
        return BarrierRun(
            plan=self.plan,
            status=self.status,
            elapsed=self.elapsed,
            instances=instances,
            restarts_done=self.restarts_done,
            restarts_skipped=self.restarts_skipped,
            withdrawals_done=self.withdrawals_done,
            notes=self.notes,
        )

    def _instance(self, pod: Pod, container: str) -> Instance:
        def wall(t: float | None) -> float | None:
            return None if t is None else t + self.wall_offset

        return Instance(
            index=pod.index,
            name=pod.name,
            address=pod.address,
            started=wall(pod.started_at),
            ended=wall(pod.ended_at),
            phase=pod.phase,
            exit_code=pod.exit_codes.get(container),
            killed=self.killed.get(pod.name),
            log=self.cluster.logs(pod),
        )
