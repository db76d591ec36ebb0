"""Pod networking as a routed CNI (Calico-style) builds it, out of network namespaces.

One "cluster" namespace plays the node: it forwards, owns the gateway address 169.254.1.1 and
the cluster DNS address, and has a /32 route per pod over that pod's veth, with proxy ARP on
its side so every pod's `default via 169.254.1.1 dev eth0 onlink` resolves. Each pod namespace
has `lo`, `eth0` and one /32 from 198.18.0.0/15. There is no bridge: pods reach each other
only through the node's routing table, as on a real node, and nothing is routed to the host.

Names carry this run's prefix (see leftovers.py), so concurrent runs do not collide and a
killed run is swept at the next start. Everything is created with a handful of `ip -batch`
calls, so hundreds of pods take seconds.
"""

from __future__ import annotations

import ipaddress
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from tests.harness import leftovers
from tests.harness.nsutil import write_sysctl

GATEWAY = "169.254.1.1"
DNS_ADDRESS = "198.18.0.10"
NODE_DNS_ADDRESS = "198.18.0.53"  # the node's own resolver (what dnsPolicy: Default gets)
# Pods draw from 198.18.1.0 upwards; 198.18.0.0/24 is kept for cluster services.
POD_RANGE = ipaddress.ip_network("198.18.0.0/15")
FIRST_POD = ipaddress.ip_address("198.18.1.1")
# IPv6-only clusters (ClusterNetwork(ipv6=True)): unique-local addresses only. The gateway is
# link-local on every node-side veth end, as Calico's fe80::ecee:eeff:feee:eeee is.
GATEWAY6 = "fe80::1"
DNS_ADDRESS6 = "fd00:198:18::10"
NODE_DNS_ADDRESS6 = "fd00:198:18::53"
POD_RANGE6 = ipaddress.ip_network("fd00:198:18:1::/64")
PING_ALL = "0 2147483647"  # containerd 2.0 / Docker: unprivileged ICMP for every group
PING_NONE = "1 0"  # CRI-O and the kernel default: nobody


class NetError(RuntimeError):
    """An ip(8) command failed."""


@dataclass(frozen=True)
class PodNet:
    """One pod's network: its namespace, its address, and the node-side end of its veth."""

    netns: str
    address: str
    host_link: str


def ip_batch(commands: Sequence[str], netns: str | None = None) -> None:
    """Run ip(8) commands in one process (`ip -n NS -batch -`); raise with its stderr."""
    if not commands:
        return
    argv = ["ip", *(["-n", netns] if netns else []), "-batch", "-"]
    proc = subprocess.run(
        argv, input="".join(c + "\n" for c in commands), text=True, capture_output=True
    )
    if proc.returncode != 0:
        raise NetError(f"{' '.join(argv)} failed: {proc.stderr.strip()}")


def _addresses6() -> Iterator[str]:
    """IPv6 pod addresses, never reused in a run."""
    for host in range(1, 1 << 16):
        yield str(POD_RANGE6[host])


def _addresses() -> Iterator[str]:
    """Pod addresses, never reused in a run (a replaced pod must get a new one)."""
    addr = FIRST_POD
    while addr in POD_RANGE:
        last = int(addr) & 0xFF
        if last not in (0, 255):
            yield str(addr)
        addr += 1


class ClusterNetwork:
    """The node namespace and its pods. A context manager; stop() removes everything."""

    _count = 0

    def __init__(self, *, dns_address: str | None = None, ipv6: bool = False) -> None:
        # Several clusters may live in one run (one per test): each gets its own sub-prefix.
        ClusterNetwork._count += 1
        self.prefix = f"{leftovers.prefix()}{ClusterNetwork._count % 100:02d}"
        self.node_ns = f"{self.prefix}-node"
        self.ipv6 = ipv6
        self.dns_address = dns_address or (DNS_ADDRESS6 if ipv6 else DNS_ADDRESS)
        self.node_dns_address = NODE_DNS_ADDRESS6 if ipv6 else NODE_DNS_ADDRESS
        self.gateway = GATEWAY6 if ipv6 else GATEWAY
        self._pool = _addresses6() if ipv6 else _addresses()
        self._serial = 0
        self.pods: dict[str, PodNet] = {}

    def __enter__(self) -> ClusterNetwork:
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
            ip_batch([f"netns add {self.node_ns}"])
            if self.ipv6:
                ip_batch(
                    [
                        "link set lo up",
                        f"addr add {self.dns_address}/128 dev lo",
                        f"addr add {self.node_dns_address}/128 dev lo",
                    ],
                    self.node_ns,
                )
                write_sysctl(self.node_ns, "net.ipv6.conf.all.forwarding", "1")
                return
            ip_batch(
                [
                    "link set lo up",
                    f"addr add {GATEWAY}/32 dev lo",
                    f"addr add {self.dns_address}/32 dev lo",
                    f"addr add {NODE_DNS_ADDRESS}/32 dev lo",
                ],
                self.node_ns,
            )
            write_sysctl(self.node_ns, "net.ipv4.ip_forward", "1")
            # New veth ends inherit these, so no per-link sysctl is needed for 256 pods.
            write_sysctl(self.node_ns, "net.ipv4.conf.default.proxy_arp", "1")
            write_sysctl(self.node_ns, "net.ipv4.conf.default.rp_filter", "0")
        except BaseException:
            self.stop()
            raise

    def add_pods(self, names: Sequence[str], ping_group_range: Sequence[str]) -> list[PodNet]:
        """Create a namespace, veth and /32 for each pod name (one ping range per pod)."""
        nets: list[PodNet] = []
        for name in names:
            self._serial += 1
            nets.append(
                PodNet(f"{self.prefix}-{name}", next(self._pool), f"{self.prefix}v{self._serial}")
            )
        for net in nets:
            self.pods[net.netns] = net
        ip_batch([f"netns add {n.netns}" for n in nets])
        ip_batch(
            [
                f"link add {n.host_link} netns {self.node_ns} type veth peer name eth0 "
                f"netns {n.netns}"
                for n in nets
            ]
        )
        node_cmds: list[str] = []
        for n in nets:
            node_cmds.append(f"link set {n.host_link} up")
            if self.ipv6:
                node_cmds += [
                    f"addr add {GATEWAY6}/64 dev {n.host_link} nodad",
                    f"route add {n.address}/128 dev {n.host_link}",
                ]
            else:
                node_cmds.append(f"route add {n.address}/32 dev {n.host_link}")
        ip_batch(node_cmds, self.node_ns)

        def configure(item: tuple[PodNet, str]) -> None:
            net, ping_range = item
            if self.ipv6:
                # No IPv4 on eth0; no DAD wait (the addresses are unique by construction).
                write_sysctl(net.netns, "net.ipv6.conf.eth0.accept_dad", "0")
                config = [
                    "link set lo up",
                    f"addr add {net.address}/128 dev eth0 nodad",
                    "link set eth0 up",
                    f"route add default via {GATEWAY6} dev eth0",
                ]
            else:
                config = [
                    "link set lo up",
                    "link set eth0 up",
                    f"addr add {net.address}/32 dev eth0",
                    f"route add default via {GATEWAY} dev eth0 onlink",
                ]
            ip_batch(config, net.netns)
            write_sysctl(net.netns, "net.ipv4.ping_group_range", ping_range)

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(configure, zip(nets, ping_group_range, strict=True)))
        return nets

    def remove_pods(self, nets: Sequence[PodNet]) -> None:
        """Kill what runs in the pods and delete their namespaces (and veths) and /etc files."""
        names = [n.netns for n in nets if n.netns in self.pods]
        for name in names:
            del self.pods[name]
        leftovers.delete_netns(names)

    def etc_dir(self, net: PodNet) -> Path:
        """/etc/netns/<ns>/: `ip netns exec` bind-mounts its files over /etc (hosts, resolv)."""
        path = leftovers.ETC_NETNS / net.netns
        path.mkdir(parents=True, exist_ok=True)
        return path

    def stop(self) -> None:
        self.remove_pods(list(self.pods.values()))
        leftovers.delete_netns(leftovers.netns_names(f"{self.prefix}-"))
        for entry in leftovers.ETC_NETNS.glob(f"{self.prefix}-*"):
            shutil.rmtree(entry, ignore_errors=True)
