"""The cluster in a box behaves like the parts of Kubernetes the agent depends on."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.harness import leftovers
from tests.harness.cluster import Cluster
from tests.harness.fixtures import ClusterFactory
from tests.harness.workload import Workload, parse

SVC = "peers.default.svc.cluster.local"


def job_yaml(
    script: str,
    *,
    completions: int = 2,
    publish_not_ready: bool = True,
    init_script: str | None = None,
) -> Workload:
    init = (
        f"      initContainers:\n        - name: init\n          image: busybox\n"
        f"          command: [sh, -c, {init_script!r}]\n"
        if init_script
        else ""
    )
    return parse(
        f"""
apiVersion: v1
kind: Service
metadata: {{name: peers}}
spec:
  clusterIP: None
  publishNotReadyAddresses: {str(publish_not_ready).lower()}
  selector: {{batch.kubernetes.io/job-name: j}}
  ports: [{{name: agent, port: 29300, protocol: TCP}}]
---
apiVersion: batch/v1
kind: Job
metadata: {{name: j}}
spec:
  completionMode: Indexed
  completions: {completions}
  parallelism: {completions}
  template:
    spec:
      subdomain: peers
      restartPolicy: Never
{init}      containers:
        - name: main
          image: busybox
          command: [sh, -c, {script!r}]
"""
    )


@pytest.mark.timeout(30)
def test_a_pod_is_a_host_with_kubelet_files(cluster: Cluster, tmp_path: Path) -> None:
    # Pod 1 stays up until pod 0 has pinged it (a file on the shared host filesystem says so):
    # without that, a loaded machine can finish pod 1 first, the seed's own race.
    done = tmp_path / "pinged"
    script = (
        f'if [ "$JOB_COMPLETION_INDEX" = 1 ]; then for i in $(seq 150); do [ -e {done} ] && exit 0;'
        " sleep 0.1; done; exit 1; fi;"
        "hostname; tail -n1 /etc/hosts; cat /etc/resolv.conf; ip -4 -o addr show eth0;"
        'echo "index=$JOB_COMPLETION_INDEX";'
        " for i in 1 2 3 4 5; do ping -c1 -W2 j-1.peers >/dev/null && echo pinged && break; done;"
        f" touch {done}"
    )
    [run] = cluster.apply(job_yaml(script))
    assert cluster.wait_job(run, 20) == "Complete"
    pod = run.pod(0)
    log = cluster.logs(pod)
    assert log.startswith("j-0\n")
    assert f"{pod.address}\tj-0.{SVC}\tj-0\n" in log
    assert "search default.svc.cluster.local svc.cluster.local cluster.local" in log
    assert "nameserver 198.18.0.10\noptions ndots:5\n" in log
    assert f"inet {pod.address}/32" in log
    assert "index=0\npinged\n" in log
    assert pod.address != run.pod(1).address


@pytest.mark.timeout(30)
def test_not_ready_pods_are_published_only_with_publish_not_ready(cluster: Cluster) -> None:
    hidden = job_yaml("sleep 30", completions=1, publish_not_ready=False, init_script="sleep 30")
    shown = job_yaml("sleep 30", completions=1, init_script="sleep 30")
    [run] = cluster.apply(hidden)
    pod = run.pod(0)
    cluster.wait_for(lambda: cluster.job_of(pod).pod(0).started, 10, "sandbox")
    time.sleep(0.3)  # give a wrong publication the chance to show
    assert cluster.resolve(f"j-0.{SVC}").rcode == "NXDOMAIN"
    cluster.kill_pod(pod)
    cluster.wait_pod(pod, 10)

    other = Cluster(cluster.workdir.parent / "other")
    with other:
        [run2] = other.apply(shown)
        answer = other.wait_dns(f"j-0.{SVC}", lambda a: a.rcode == "NOERROR", 10)
        assert answer.addresses == {run2.pod(0).address}
        srv = other.resolve(f"_agent._tcp.{SVC}", "SRV")
        assert srv.values == {f"0 100 29300 j-0.{SVC}."}


@pytest.mark.timeout(30)
def test_ready_publishes_and_end_withdraws(cluster: Cluster) -> None:
    wl = job_yaml("sleep 0.5", completions=1, publish_not_ready=False, init_script="sleep 0.5")
    [run] = cluster.apply(wl)
    pod = run.pod(0)
    cluster.wait_dns(f"j-0.{SVC}", lambda a: a.addresses == {pod.address}, 10)
    assert pod.ready and not pod.spec.job.template.init_containers[0].is_sidecar
    assert cluster.wait_job(run, 10) == "Complete"
    cluster.wait_dns(f"j-0.{SVC}", lambda a: a.rcode == "NXDOMAIN", 5)
    assert cluster.resolve(SVC).rcode == "NXDOMAIN"


@pytest.mark.timeout(30)
def test_publication_delay(make_cluster: ClusterFactory) -> None:
    cluster = make_cluster(publish_delay=1.0)
    [run] = cluster.apply(job_yaml("sleep 30", completions=1))
    pod = run.pod(0)
    cluster.wait_dns(f"j-0.{SVC}", lambda a: a.rcode == "NOERROR", 10)
    assert pod.started_at is not None
    assert time.monotonic() - pod.started_at >= 0.95


@pytest.mark.timeout(30)
def test_a_pod_waiting_to_be_scheduled_starts_when_told(cluster: Cluster) -> None:
    """start_now ends a start delay early: a bench starts the last pod on its own condition."""
    [run] = cluster.apply(job_yaml("true", completions=2), start_delays={1: 3600.0})
    assert cluster.wait_pod(run.pod(0), 10).phase == "Succeeded"
    assert not run.pod(1).started
    run.pod(1).start_now()
    assert cluster.wait_job(run, 10) == "Complete"


@pytest.mark.timeout(30)
def test_replaced_pod_keeps_hostname_and_gets_new_address(cluster: Cluster) -> None:
    [run] = cluster.apply(job_yaml("sleep 30", completions=2))
    old = run.pod(1)
    cluster.wait_dns(f"j-1.{SVC}", lambda a: a.addresses == {old.address}, 10)
    new = cluster.replace_pod(old)
    assert (new.hostname, new.index) == (old.hostname, old.index)
    assert new.address != old.address and new.name != old.name
    cluster.wait_dns(f"j-1.{SVC}", lambda a: a.addresses == {new.address}, 10)
    cluster.wait_pod(old, 10)
    assert run.status == "Running" and run.pod(1) is new


@pytest.mark.timeout(30)
def test_failed_pod_fails_the_job_without_backoff_limit(cluster: Cluster) -> None:
    [run] = cluster.apply(job_yaml("exit 3", completions=1))
    assert cluster.wait_job(run, 10) == "Failed"
    assert run.pod(0).exit_codes == {"main": 3}


@pytest.mark.timeout(30)
def test_a_failed_job_deletes_its_other_pods_with_their_grace_period(
    cluster: Cluster, tmp_path: Path
) -> None:
    """As the Job controller does: SIGTERM, then terminationGracePeriodSeconds (30 s here)
    before SIGKILL. A container that takes a moment to finish at SIGTERM ends with its own code;
    the harness once sent SIGKILL at once, which no real pod gets."""
    go = tmp_path / "go"
    script = f'[ "$JOB_COMPLETION_INDEX" = 1 ] && {{ until [ -e {go} ]; do sleep 0.05; done; '
    script += 'exit 3; }; trap "sleep 0.5; exit 0" TERM; echo trapped; '
    script += "while :; do sleep 0.05; done"
    [run] = cluster.apply(job_yaml(script, completions=2))
    cluster.wait_log(run.pod(0), "trapped", 10)
    go.touch()  # pod 1 fails only once pod 0 has its trap
    assert cluster.wait_job(run, 20) == "Failed"
    assert run.pod(1).exit_codes == {"main": 3}
    assert cluster.wait_pod(run.pod(0), 10).exit_codes == {"main": 0}


@pytest.mark.timeout(30)
def test_leftovers_of_a_dead_run_are_swept(tmp_path: Path) -> None:
    from tests.harness.fixtures import require_root

    require_root()
    dead = leftovers.REGISTRY / "dead00"
    (dead / "pids").mkdir(parents=True)
    (dead / "paths").mkdir()
    (dead / "owner").write_text("999999999 1\n")
    junk = tmp_path / "junk"
    junk.mkdir()
    (dead / "paths" / "junk").write_text(str(junk))
    subprocess.run(["ip", "netns", "add", "padead00-x"], check=True)
    leftovers.ETC_NETNS.joinpath("padead00-x").mkdir(parents=True, exist_ok=True)
    sleeper = subprocess.Popen(["ip", "netns", "exec", "padead00-x", "sleep", "60"])
    try:
        inode = os.stat(leftovers.NETNS_DIR / "padead00-x").st_ino
        deadline = time.monotonic() + 5
        while os.stat(f"/proc/{sleeper.pid}/ns/net").st_ino != inode:  # it has joined
            assert time.monotonic() < deadline
            time.sleep(0.01)
        leftovers.sweep()
        assert sleeper.wait(timeout=5) != 0
        assert not (leftovers.NETNS_DIR / "padead00-x").exists()
        assert not leftovers.ETC_NETNS.joinpath("padead00-x").exists()
        assert not junk.exists() and not dead.exists()
    finally:
        sleeper.kill()
        subprocess.run(["ip", "netns", "del", "padead00-x"], capture_output=True)


@pytest.mark.timeout(30)
def test_cluster_dns_with_negative_caching_answers_on_the_cluster_address(
    make_cluster: ClusterFactory,
) -> None:
    """The caching front must listen where pods send queries (it once took the backend's port)."""
    cluster = make_cluster(negative_ttl=2)
    assert cluster.resolve("nobody.default.svc.cluster.local.").rcode == "NXDOMAIN"
