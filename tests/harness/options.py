"""How a cluster in a box is set up: DNS zone and caching, probe periods, sandboxes, images,
IPv6, podman, and what `image: peer-agent` runs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tests.harness.netns import PING_ALL
from tests.harness.podman import PodmanRuntime

__all__ = ["ClusterOptions"]


@dataclass(frozen=True)
class ClusterOptions:
    zone: str = "cluster.local"
    ping_group_range: str = PING_ALL  # the runtime's default (containerd); CRI-O: PING_NONE
    publish_delay: float = 0.0  # EndpointSlice -> CoreDNS lag
    negative_ttl: int = 0  # CoreDNS cache for NXDOMAIN (0: no cache in front)
    record_ttl: int = 0  # TTL of published records (CoreDNS `ttl`)
    # The node's resolv.conf (what dnsPolicy: Default inherits): the node's own resolver,
    # which is not cluster DNS and answers NXDOMAIN for every cluster name. None: that one.
    node_resolv: str | None = None
    probe_period: float | None = 0.2  # overrides probes' periodSeconds to keep tests fast
    # Seconds an ended pod's sandbox (its address) lives on, as kubelet stops it a moment
    # after the last container exits. 0: gone at once, the strict model.
    sandbox_teardown_delay: float = 0.0
    # Files of the images the workloads name, bind-mounted into their containers:
    # (image repository basename, host directory, path in the container). The peer-agent
    # image's /opt/peer-agent (the zipapp) is always there.
    image_files: tuple[tuple[str, Path, str], ...] = ()
    # An IPv6-only cluster: pods have unique-local IPv6 addresses (fd00:198:18:1::/64) and no
    # IPv4 on eth0, cluster DNS listens on fd00:198:18::10 and publishes AAAA records only.
    ipv6_only: bool = False
    # Images run as real containers by podman in the pods' namespaces (see podman.py).
    podman: PodmanRuntime | None = None
    # What `image: peer-agent` runs (an installed `peer-agent`, say); () = the run's copy of
    # this checkout's agent (install.py).
    agent_command: tuple[str, ...] = ()
