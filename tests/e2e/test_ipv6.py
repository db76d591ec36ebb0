"""IPv6-only clusters: pods with unique-local addresses only, AAAA records only in cluster DNS.

Kubernetes publishes only AAAA records for a headless Service in an IPv6-only cluster (and only
the primary family in a dual-stack one, by default). The seed example, the sidecar example and
torchrun behind the agent must work there unchanged.
"""

from __future__ import annotations

import ipaddress
import subprocess
from pathlib import Path

import pytest

from tests.e2e.test_agent import assert_all_succeeded, seed_example
from tests.e2e.test_torchrun import assert_allreduce_everywhere
from tests.harness import workload
from tests.harness.dnsquery import DNSAnswer
from tests.harness.fixtures import ClusterFactory
from tests.harness.realworkloads import torch_image_files, torchrun_behind_agent
from tests.harness.variants import with_env

REPO = Path(__file__).parents[2]
SVC = "example-peers.default.svc.cluster.local"
ULA = ipaddress.ip_network("fd00::/8")


@pytest.mark.timeout(120)
def test_seed_example_in_an_ipv6_only_cluster(make_cluster: ClusterFactory) -> None:
    cluster = make_cluster(publish_delay=1.0, ipv6_only=True)
    [run] = cluster.apply(seed_example(), start_delays={2: 3.0})
    pod0 = run.pod(0)
    cluster.wait_log(pod0, "listening on port", 30)
    # While pod 0 holds the barrier for the late pod: no IPv4 on its interface, AAAA only.
    eth0 = subprocess.run(
        ["ip", "-n", pod0.spec.net.netns, "-o", "addr", "show", "dev", "eth0"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert " inet " not in eth0 and f"inet6 {pod0.address}/128" in eth0, eth0
    assert ipaddress.ip_address(pod0.address) in ULA
    name = f"example-job-0.{SVC}"
    cluster.wait_dns(name, lambda answer: answer.addresses == {pod0.address}, 10, "AAAA")
    assert cluster.resolve(name, "A") == DNSAnswer("NOERROR", frozenset())  # NODATA
    _, doctor = cluster.exec(pod0, ["peer-agent", "doctor", "--timeout", "3s"])
    assert f"[{cluster.net.dns_address}]:53" in doctor, doctor
    assert_all_succeeded(cluster, run, 60)
    for i in range(3):
        address = run.pod(i).address
        assert f"at {address} (tcp)" in cluster.logs(run.pod(0)), cluster.logs(run.pod(0))


@pytest.mark.timeout(120)
def test_sidecar_example_in_an_ipv6_only_cluster(make_cluster: ClusterFactory) -> None:
    """The sidecar's startupProbe (/readyz) is asked over IPv6 too, as kubelet would."""
    cluster = make_cluster(publish_delay=1.0, ipv6_only=True)
    sidecar = with_env(workload.load(REPO / "k8s/examples/sidecar"), "PEER_AGENT_TIMEOUT", "60s")
    [run] = cluster.apply(sidecar, start_delays={1: 3.0})
    status = cluster.wait_job(run, 60)
    logs = "\n".join(
        f"--- {p.name}\n{cluster.logs(p, 'peer-agent')}{cluster.logs(p, 'workload')}"
        for p in run.all_pods()
    )
    assert status == "Complete", logs
    for i in range(3):
        assert f"pod {i} starts after every peer is reachable" in cluster.logs(
            run.pod(i), "workload"
        )


@pytest.mark.timeout(300)
def test_torchrun_in_an_ipv6_only_cluster(make_cluster: ClusterFactory) -> None:
    """gloo and torch's store find the master by its AAAA record (MASTER_ADDR is a name)."""
    cluster = make_cluster(publish_delay=1.0, ipv6_only=True, image_files=torch_image_files())
    [run] = cluster.apply(torchrun_behind_agent(), start_delays={0: 3.0})
    assert_allreduce_everywhere(cluster, run, late=0)
