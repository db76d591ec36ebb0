"""`make demo SEED=1`: the seed task's ping loop stranded by its early-exit race, then the same
Job behind peer-agent completing.

The race (jobset#135): a pod's name and address exist from its sandbox on when its Service
publishes pods before they are Ready (``publishNotReadyAddresses: true``, JobSet's default, and
what any Service needs whose pods resolve each other from an init container), and the kernel
answers ping before any container runs. So when one pod's image pull is slow, the others ping
it, succeed, complete and leave DNS; its loop then starts, asks for a name that is gone, and
retries for ever. The Job never completes. The demo waits a stated time for it, says so, and
runs the same Job, the same pod as late, with peer-agent.
"""

from __future__ import annotations

import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

from tests.harness import workload
from tests.harness.cluster import Cluster
from tests.harness.demoprint import applied, get_pods, logs, say
from tests.harness.jobrun import JobRun
from tests.harness.options import ClusterOptions
from tests.harness.pod import RUNNING, SUCCEEDED
from tests.harness.variants import with_publish_not_ready

__all__ = ["SEED_LOOP", "give_up_after", "show_race"]

SEED_LOOP = Path(__file__).parent / "workloads" / "seed.yaml"
REPO = Path(__file__).resolve().parents[2]
LATE = 2  # the index whose image pull is slow: the loop pings 0, 1, 2, so 0 is gone first
JOB_TIMEOUT = 120.0  # for the Job behind peer-agent, which completes in seconds


def give_up_after(publish_delay: float) -> float:
    """How long the demo waits for the seed's Job: the late pod's loop gets 12 s of retries."""
    return _pull_late(publish_delay) + 12.0


def _pull_late(publish_delay: float) -> float:
    """Late enough: the others complete about a publish delay and a ping round after they
    start, and leave DNS a publish delay later; 4 s more is the margin."""
    return 2 * publish_delay + 4.0


@dataclass(frozen=True)
class Seen:
    status: str  # Complete, Failed, or "" when the demo gave up waiting
    took: float
    stranded: str = ""  # the late pod, when it is stranded


def _tell(text: str) -> None:
    print(textwrap.fill(text, width=100, break_on_hyphens=False), flush=True)


def _wait(cluster: Cluster, run: JobRun, started: float, bound: float) -> Seen:
    name = f"job/{run.job.name}"
    say(f"kubectl wait --for=condition=complete {name} --timeout={bound:g}s")
    try:
        status = cluster.wait_job(run, max(0.0, bound - (time.monotonic() - started)))
    except TimeoutError:
        status = ""
    took = time.monotonic() - started
    if status:
        say(f"{name} {status} after {took:.1f}s")
    else:
        say(f"error: timed out waiting for the condition on {name} ({took:.1f}s)")
    return Seen(status, took)


def _stranded(cluster: Cluster, run: JobRun) -> str:
    """Why the late pod can never finish, from what the box shows; "" if it is not stuck."""
    first, late = run.pod(0), run.pod(LATE)
    log = cluster.logs(late)
    svc = run.job.template.subdomain
    gone = f"{first.hostname}.{svc}.{run.job.namespace}.svc.{cluster.options.zone}"
    answer = cluster.resolve(gone)
    stuck = (
        first.phase == SUCCEEDED
        and late.phase == RUNNING
        and answer.rcode == "NXDOMAIN"
        and f"Failed to ping pod {first.hostname}.{svc}" in log
        and f"Successfully pinged pod: {first.hostname}.{svc}" not in log
    )
    if not stuck:
        return ""
    say(f"cluster DNS answers {answer.rcode} for {gone}")
    return (
        f"{late.name} is stranded: the other pods pinged it while its image was still pulling, "
        f"completed and left DNS; its loop then started, and it retries {first.hostname}.{svc} "
        f"for ever, so {run.job.name} never completes."
    )


def _seed_loop(work: Path, options: ClusterOptions) -> Seen:
    shown = SEED_LOOP.relative_to(REPO)
    late = _pull_late(options.publish_delay)
    print(f"== 1/2 without peer-agent: the seed task's bash ping loop ({shown})")
    _tell(
        "The demo sets publishNotReadyAddresses: true on its Service (JobSet's default, and what "
        "a Service needs whose pods resolve each other from an init container): a pod's name and "
        f"address exist from its sandbox on. Pod {LATE}'s image takes {late:g}s to pull."
    )
    wl = with_publish_not_ready(workload.load(SEED_LOOP), True)
    with Cluster(work, options) as cluster:
        say(f"kubectl apply -f {shown}")
        applied(workload.render(SEED_LOOP), wl)
        started = time.monotonic()
        [run] = cluster.apply(wl, pull_delays={LATE: late})
        seen = _wait(cluster, run, started, give_up_after(options.publish_delay))
        get_pods(run)
        logs(cluster, run)
        why = "" if seen.status else _stranded(cluster, run)
    if not seen.status:
        _tell(f"The demo gave up waiting after {seen.took:.0f}s. {why}".rstrip())
    return Seen(seen.status, seen.took, run.pod(LATE).name if why else "")


def _behind_agent(work: Path, options: ClusterOptions, source: Path) -> Seen:
    shown = source.relative_to(REPO)
    late = _pull_late(options.publish_delay)
    print(f"== 2/2 with peer-agent: {shown}, the same Job, pod {LATE}'s image {late:g}s late")
    wl = workload.load(source)
    with Cluster(work, options) as cluster:
        say(f"kubectl apply {'-k' if source.is_dir() else '-f'} {shown}")
        applied(workload.render(source), wl)
        started = time.monotonic()
        [run] = cluster.apply(wl, pull_delays={LATE: late})
        seen = _wait(cluster, run, started, JOB_TIMEOUT)
        get_pods(run)
        logs(cluster, run)
    return seen


def show_race(work: Path, options: ClusterOptions, agent_example: Path) -> int:
    """Both runs and a verdict; 0 when the Job behind peer-agent completed."""
    seed = _seed_loop(work / "seed", options)
    print()
    agent = _behind_agent(work / "agent", options, agent_example)
    print()
    if seed.stranded:
        before = (
            f"never completes: {seed.stranded} stranded (the demo gave up after {seed.took:.0f}s)"
        )
    elif seed.status:
        before = f"ended {seed.status} after {seed.took:.1f}s: the race was not hit this time"
    else:
        before = f"not complete after {seed.took:.0f}s, though no pod was stranded as expected"
    outcome = {"Complete": "completed", "Failed": "failed"}.get(agent.status, "did NOT complete")
    after = f"{outcome} after {agent.took:.1f}s"
    print(f"without peer-agent: the Job {before}")
    print(f"with peer-agent:    the Job {after}")
    return 0 if agent.status == "Complete" else 1
