"""peer-agent in the cluster in a box: the seed example and what goes wrong around it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from tests.harness import workload
from tests.harness.cluster import Cluster
from tests.harness.fixtures import ClusterFactory
from tests.harness.jobrun import JobRun
from tests.harness.netns import PING_NONE
from tests.harness.pod import FAILED, SUCCEEDED, Pod
from tests.harness.variants import with_dns_policy, with_env
from tests.harness.workload import Workload

REPO = Path(__file__).parents[2]
WORKLOADS = REPO / "tests" / "harness" / "workloads"
SHIPPED = REPO / "k8s" / "examples" / "seed"
SVC = "example-peers.default.svc.cluster.local"


def seed_example(timeout: str = "60s") -> Workload:
    """k8s/examples/seed as shipped (a local copy until k8s/ has it), with a bounded timeout."""
    source = SHIPPED if SHIPPED.is_dir() else WORKLOADS / "seed-peer-agent.yaml"
    return with_env(workload.load(source), "PEER_AGENT_TIMEOUT", timeout)


def assert_all_succeeded(cluster: Cluster, run: JobRun, timeout: float) -> None:
    status = cluster.wait_job(run, timeout)
    logs = "\n".join(f"--- {p.name} {p.phase}\n{cluster.logs(p)}" for p in run.all_pods())
    assert status == "Complete", logs
    for i in range(run.job.completions):
        assert run.pod(i).phase == SUCCEEDED, logs
        assert "barrier released" in cluster.logs(run.pod(i)), logs


def failed_by_itself(run: JobRun) -> Pod:
    """The pod that failed the Job (backoffLimit 0); the Job then deletes the others."""
    failed = [p for p in run.all_pods() if p.phase == FAILED and not p.terminating]
    assert failed, [(p, p.exit_codes) for p in run.all_pods()]
    return failed[0]


def assert_barrier_held(run: JobRun) -> None:
    """Safety: no agent's pod ended before the last pod had started."""
    last_start = max(p.started_at or 0.0 for p in run.all_pods())
    for i in range(run.job.completions):
        pod = run.pod(i)
        assert pod.ended_at is not None and pod.ended_at >= last_start, pod


@pytest.mark.timeout(120)
def test_seed_example_all_pods_succeed(make_cluster: ClusterFactory) -> None:
    cluster = make_cluster(publish_delay=1.0)
    [run] = cluster.apply(seed_example())
    assert_all_succeeded(cluster, run, 70)
    assert "pod 0 of 3 reached all of" in cluster.logs(run.pod(0))


@pytest.mark.timeout(120)
def test_start_skew_of_several_seconds(make_cluster: ClusterFactory) -> None:
    cluster = make_cluster(publish_delay=0.5)
    [run] = cluster.apply(seed_example(), start_delays={0: 4.0, 1: 2.0})
    assert_all_succeeded(cluster, run, 70)
    assert_barrier_held(run)


@pytest.mark.timeout(120)
def test_no_early_exit_race(cluster: Cluster) -> None:
    """The conditions that strand the seed's loop (test_seed_baseline): pod 2's container
    starts 3 s after its address is published. Nobody leaves, and nobody is left behind."""
    [run] = cluster.apply(seed_example(), pull_delays={2: 3.0})
    assert_all_succeeded(cluster, run, 70)
    assert_barrier_held(run)


@pytest.mark.timeout(120)
def test_pod_replaced_with_new_address_mid_wait(cluster: Cluster) -> None:
    """Pod 1 is deleted while everyone waits for the late pod 2; its replacement has the
    same hostname and a new address, and the barrier still passes for all."""
    [run] = cluster.apply(seed_example(), start_delays={2: 4.0})
    old = run.pod(1)
    cluster.wait_log(old, r"reached example-job-0\.", 10)
    new = cluster.replace_pod(old)
    assert new.address != old.address and new.hostname == old.hostname
    assert_all_succeeded(cluster, run, 70)
    assert old.phase == FAILED and run.pod(1) is new
    assert_barrier_held(run)


@pytest.mark.timeout(120)
def test_init_container_without_publish_not_ready_times_out_with_hint(cluster: Cluster) -> None:
    [run] = cluster.apply(workload.load(WORKLOADS / "agent-init-not-ready.yaml"))
    assert cluster.wait_job(run, 30) == "Failed"
    pod = failed_by_itself(run)
    assert pod.exit_codes == {"wait-for-peers": 3}  # the main container never ran
    log = cluster.logs(pod, "wait-for-peers")
    assert "publishNotReadyAddresses" in log, log
    assert cluster.resolve("trainer-0.workers.default.svc.cluster.local").rcode == "NXDOMAIN"


@pytest.mark.timeout(120)
def test_dns_policy_default_doctor_names_the_cause(cluster: Cluster) -> None:
    [run] = cluster.apply(with_dns_policy(seed_example(timeout="90s"), "Default"))
    pod = run.pod(0)
    cluster.wait_for(lambda: pod.running(run.job.template.containers[0].name), 10, "agent up")
    code, out = cluster.exec(pod, ["peer-agent", "doctor", "--timeout", "3s"])
    assert code != 0, out
    assert "dnsPolicy" in out and "search list" in out, out


def icmp_workload(sysctl: str | None = None) -> Workload:
    wl = workload.load(WORKLOADS / "agent-icmp.yaml")
    if sysctl is None:
        return wl
    job = wl.job()
    template = replace(job.template, sysctls=(("net.ipv4.ping_group_range", sysctl),))
    return replace(wl, jobs=(replace(job, template=template),))


@pytest.mark.timeout(120)
def test_icmp_probe_with_ping_group_range(cluster: Cluster) -> None:
    """containerd's default range lets an unprivileged, capability-less pod ping."""
    [run] = cluster.apply(icmp_workload())
    assert cluster.wait_job(run, 20) == "Complete"
    assert "(icmp)" in cluster.logs(run.pod(0))


@pytest.mark.timeout(120)
def test_icmp_probe_without_ping_group_range_says_why(cluster: Cluster) -> None:
    """CRI-O's (and the kernel's) '1 0': no ICMP socket, no CAP_NET_RAW -> a clear error."""
    [run] = cluster.apply(icmp_workload(), ping_group_range=PING_NONE)
    assert cluster.wait_job(run, 20) == "Failed"
    first = failed_by_itself(run)
    assert first.exit_codes["peer-agent"] in (2, 3)
    log = cluster.logs(first)
    assert "ping_group_range" in log, log


@pytest.mark.timeout(120)
def test_icmp_pod_sysctl_overrides_the_runtime(cluster: Cluster) -> None:
    """The fix the error suggests: the pod's own securityContext.sysctls, under CRI-O."""
    [run] = cluster.apply(icmp_workload("0 2147483647"), ping_group_range=PING_NONE)
    assert cluster.wait_job(run, 20) == "Complete"


@pytest.mark.timeout(120)
def test_native_sidecar_example_gates_the_workload(make_cluster: ClusterFactory) -> None:
    """k8s/examples/sidecar: the agent as a native sidecar whose startupProbe (/readyz) holds
    the workload container back until the barrier passed, with pod 1 starting 2 s late."""
    source = REPO / "k8s" / "examples" / "sidecar"
    if not source.is_dir():
        pytest.fail("k8s/examples/sidecar is missing")
    cluster = make_cluster(publish_delay=0.5)
    wl = with_env(workload.load(source), "PEER_AGENT_TIMEOUT", "60s", only_if_set=False)
    [run] = cluster.apply(wl, start_delays={1: 2.0})
    assert cluster.wait_job(run, 70) == "Complete"
    last_start = max(p.started_at or 0.0 for p in run.all_pods())
    for i in range(3):
        pod = run.pod(i)
        assert "barrier released" in cluster.logs(pod, "peer-agent")
        assert cluster.logs(pod, "workload") == f"pod {i} starts after every peer is reachable\n"
        assert pod.ended_at is not None and pod.ended_at >= last_start


@pytest.mark.timeout(150)
def test_a_named_barrier_through_the_native_sidecar(make_cluster: ClusterFactory) -> None:
    """k8s/examples/sidecar with a workload that passes the named barrier `data-ready` (as a
    step after downloading a dataset would): pod 2 asks 3 s after the others, and no pod's
    workload goes past it before pod 2 has asked. Pod 1 first asks pod 0's sidecar: refused
    (403, exit 2), as a client in another pod must be, and pod 0 starts no such barrier."""
    source = REPO / "k8s" / "examples" / "sidecar"
    cluster = make_cluster(publish_delay=0.5)
    wl = with_env(workload.load(source), "PEER_AGENT_TIMEOUT", "60s", only_if_set=False)
    script = (
        '[ "$JOB_COMPLETION_INDEX" != 1 ] || { peer-agent barrier sneaky --listen '
        'example-job-0.example-peers --timeout 5s; echo "from another pod: exit $?"; }; '
        '[ "$JOB_COMPLETION_INDEX" != 2 ] || sleep 3; '
        "peer-agent barrier data-ready --timeout 30s && "
        'echo "pod $JOB_COMPLETION_INDEX passed data-ready"'
    )
    jobs = []
    for job in wl.jobs:
        t = job.template
        mains = tuple(
            replace(c, command=("sh", "-c", script)) if c.name == "workload" else c
            for c in t.containers
        )
        jobs.append(replace(job, template=replace(t, containers=mains)))
    [run] = cluster.apply(replace(wl, jobs=tuple(jobs)))
    assert cluster.wait_job(run, 90) == "Complete", [cluster.logs(p) for p in run.all_pods()]
    late = run.pod(2).started_at
    assert late is not None
    for i in range(3):
        pod = run.pod(i)
        assert cluster.logs(pod, "workload").endswith(f"pod {i} passed data-ready\n")
        assert pod.ended_at is not None and pod.ended_at >= late + 3.0
    refused = cluster.logs(run.pod(1), "workload")
    assert "for clients in this pod only" in refused and "from another pod: exit 2" in refused
    assert "sneaky" not in cluster.logs(run.pod(0), "peer-agent")
