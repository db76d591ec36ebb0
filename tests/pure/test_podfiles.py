"""kubelet's files as pods really have them."""

from __future__ import annotations

import pytest

from agent.topology.podfiles import find_fqdn_entry, parse_resolv_conf

pytestmark = pytest.mark.timeout(10)

KUBELET_HOSTS = """# Kubernetes-managed hosts file.
127.0.0.1\tlocalhost
::1\tlocalhost ip6-localhost ip6-loopback
fe00::0\tip6-localnet
10.244.0.12\texample-job-0.headless-svc.default.svc.cluster.local\texample-job-0
"""


@pytest.mark.parametrize(
    ("hosts", "hostname", "expected"),
    [
        pytest.param(
            KUBELET_HOSTS,
            "example-job-0",
            ("10.244.0.12", "headless-svc", "default", "cluster.local"),
            id="kubelet",
        ),
        pytest.param(KUBELET_HOSTS, "example-job-1", None, id="other-pod"),
        pytest.param("127.0.0.1 localhost\n", "example-job-0", None, id="no-subdomain"),
        pytest.param(
            "10.0.0.1 a-0.s.ns.pod.cluster.local a-0\n", "a-0", None, id="not-a-service-name"
        ),
        pytest.param(
            "fd00::5 a-0.s.ns.svc.k8s.corp.example a-0 # comment\n",
            "a-0",
            ("fd00::5", "s", "ns", "k8s.corp.example"),
            id="ipv6-multi-label-zone",
        ),
        pytest.param("\n\n   \n#x\n", "a-0", None, id="blank"),
    ],
)
def test_fqdn_line(hosts: str, hostname: str, expected: tuple[str, ...] | None) -> None:
    entry = find_fqdn_entry(hosts, hostname)
    got = (entry.address, entry.subdomain, entry.namespace, entry.zone) if entry else None
    assert got == expected


@pytest.mark.parametrize(
    ("text", "cluster_search"),
    [
        pytest.param(
            "search default.svc.cluster.local svc.cluster.local cluster.local\n"
            "nameserver 10.96.0.10\noptions ndots:5\n",
            True,
            id="ClusterFirst",
        ),
        pytest.param("nameserver 169.254.169.254\nsearch ec2.internal\n", False, id="Default"),
        pytest.param("nameserver 1.1.1.1\n", False, id="None-without-dnsConfig"),
    ],
)
def test_resolv_conf(text: str, cluster_search: bool) -> None:
    resolv = parse_resolv_conf(text)
    assert resolv.has_cluster_search("default", "cluster.local") is cluster_search
    assert resolv.nameservers


def test_resolv_conf_details() -> None:
    resolv = parse_resolv_conf(
        "nameserver 10.0.0.1 # first\nnameserver 10.0.0.2\nsearch a b\nsearch c.\n"
        "options ndots:99 timeout:1\n; comment\n"
    )
    assert resolv.nameservers == ("10.0.0.1", "10.0.0.2")
    assert resolv.search == ("c",)
    assert resolv.ndots == 15
