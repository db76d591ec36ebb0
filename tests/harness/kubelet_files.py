"""The /etc/hosts and /etc/resolv.conf that kubelet writes into a pod, byte for byte.

Sources: kubelet's managed hosts file (pkg/kubelet/kubelet_pods.go) and its DNS configurer
(pkg/kubelet/network/dns/dns.go). The agent parses these files, so the format matters.
"""

from __future__ import annotations

from tests.harness.workload import DNSConfig

HOSTS_HEADER = (
    "# Kubernetes-managed hosts file.\n"
    "127.0.0.1\tlocalhost\n"
    "::1\tlocalhost ip6-localhost ip6-loopback\n"
    "fe00::0\tip6-localnet\n"
    "fe00::0\tip6-mcastprefix\n"
    "fe00::1\tip6-allnodes\n"
    "fe00::2\tip6-allrouters\n"
)


def hosts(pod_ip: str, hostname: str, subdomain: str | None, namespace: str, zone: str) -> str:
    """With a subdomain the FQDN line comes first, as kubelet writes it; else the bare name."""
    if subdomain:
        fqdn = f"{hostname}.{subdomain}.{namespace}.svc.{zone}"
        return HOSTS_HEADER + f"{pod_ip}\t{fqdn}\t{hostname}\n"
    return HOSTS_HEADER + f"{pod_ip}\t{hostname}\n"


def resolv_conf(
    policy: str,
    config: DNSConfig,
    *,
    namespace: str,
    zone: str,
    cluster_dns: str,
    node_resolv: str,
) -> str:
    """resolv.conf for dnsPolicy ClusterFirst (and ...WithHostNet), Default or None.

    `Default` is the node's own file; `None` is dnsConfig alone; dnsConfig entries are appended
    to the policy's own in the other cases, as kubelet merges them.
    """
    if policy == "Default":
        base_ns, base_search, base_opts = _parse(node_resolv)
    elif policy == "None":
        base_ns, base_search, base_opts = [], [], []
    elif policy in ("ClusterFirst", "ClusterFirstWithHostNet"):
        _, node_search, _ = _parse(node_resolv)
        base_ns = [cluster_dns]
        base_search = [f"{namespace}.svc.{zone}", f"svc.{zone}", zone, *node_search]
        base_opts = ["ndots:5"]
    else:
        raise ValueError(f"dnsPolicy {policy!r} is not one Kubernetes knows")
    nameservers = _dedup([*base_ns, *config.nameservers])[:3]
    searches = _dedup([*base_search, *config.searches])[:32]
    options = _merge_options(base_opts, config.options)
    text = ""
    if searches:
        text += "search " + " ".join(searches) + "\n"
    text += "".join(f"nameserver {ns}\n" for ns in nameservers)
    if options:
        text += "options " + " ".join(options) + "\n"
    return text


def _parse(text: str) -> tuple[list[str], list[str], list[str]]:
    nameservers: list[str] = []
    searches: list[str] = []
    options: list[str] = []
    for line in text.splitlines():
        fields = line.split()
        if not fields or fields[0].startswith(("#", ";")):
            continue
        if fields[0] == "nameserver" and len(fields) > 1:
            nameservers.append(fields[1])
        elif fields[0] in ("search", "domain"):
            searches = fields[1:]
        elif fields[0] == "options":
            options += fields[1:]
    return nameservers, searches, options


def _dedup(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _merge_options(base: list[str], extra: tuple[tuple[str, str | None], ...]) -> list[str]:
    """dnsConfig options override same-named base options (e.g. ndots)."""
    merged: dict[str, str | None] = {}
    for opt in base:
        name, _, text = opt.partition(":")
        merged[name] = text or None
    for name, value in extra:
        merged[name] = value
    return [name if value is None else f"{name}:{value}" for name, value in merged.items()]
