"""What the pod's files say: the facts ``agent.io.podfacts`` gathers, and parsers for the files
kubelet writes into a pod (``/etc/hosts``, ``/etc/resolv.conf``).

Pure: they take the text, never the path.
"""

from __future__ import annotations

from collections.abc import Mapping

from agent.values import field, value

__all__ = [
    "FileRead",
    "HostsEntry",
    "PodFacts",
    "ResolvConf",
    "find_fqdn_entry",
    "parse_resolv_conf",
]


@value
class FileRead:
    """A file named by an option: its bytes and mode, or why it could not be read."""

    data: bytes | None = None
    mode: int | None = None
    error: str = "No such file or directory"


@value
class PodFacts:
    """Everything configuration needs from the pod, read once by ``agent.io.podfacts``.

    Tests build it by hand; ``files`` holds the files options name (token, ``--peers-from``),
    ``missing_dirs`` the output files' directories that do not exist.
    """

    hostname: str = ""
    hosts: str = ""
    resolv_conf: str = ""
    sa_namespace: str = ""
    # Not in repr: they hold PEER_AGENT_TOKEN and the token file's bytes.
    environ: Mapping[str, str] = field(default_factory=dict, repr=False)
    files: Mapping[str, FileRead] = field(default_factory=dict, repr=False)
    missing_dirs: frozenset[str] = frozenset()

    def file(self, path: str) -> FileRead:
        return self.files.get(path, FileRead())


@value
class HostsEntry:
    """kubelet's ``<podIP>\\t<hostname>.<subdomain>.<ns>.svc.<zone>\\t<hostname>``, split."""

    address: str
    fqdn: str
    subdomain: str
    namespace: str
    zone: str


def find_fqdn_entry(hosts_text: str, hostname: str) -> HostsEntry | None:
    """The FQDN line for ``hostname``, or None when kubelet wrote none (no subdomain set)."""
    prefix = hostname + "."
    for raw in hosts_text.splitlines():
        fields = raw.split("#", 1)[0].split()
        if len(fields) < 2:
            continue
        for name in fields[1:]:
            name = name.rstrip(".").lower()
            if not name.startswith(prefix):
                continue
            rest = name[len(prefix) :].split(".")
            # <subdomain>.<namespace>.svc.<zone...>
            if len(rest) >= 4 and rest[2] == "svc" and all(rest):
                return HostsEntry(
                    address=fields[0],
                    fqdn=name,
                    subdomain=rest[0],
                    namespace=rest[1],
                    zone=".".join(rest[3:]),
                )
    return None


@value
class ResolvConf:
    nameservers: tuple[str, ...] = ()
    search: tuple[str, ...] = ()
    ndots: int = 1

    def has_cluster_search(self, namespace: str, zone: str) -> bool:
        """True when short names like ``<job>-0.<service>`` resolve (dnsPolicy ClusterFirst)."""
        return f"svc.{zone}" in self.search or f"{namespace}.svc.{zone}" in self.search

    def pod_domain(self) -> tuple[str, str] | None:
        """(namespace, zone) from the search list kubelet writes for dnsPolicy ClusterFirst,
        ``<ns>.svc.<zone> svc.<zone> <zone>``: what a pod without a subdomain (no FQDN line in
        /etc/hosts) and without a service-account token still knows of where it is."""
        for first, second in zip(self.search, self.search[1:], strict=False):
            namespace, _, rest = first.partition(".")
            if namespace and rest.startswith("svc.") and second == rest:
                return namespace, rest.removeprefix("svc.")
        return None


def parse_resolv_conf(text: str) -> ResolvConf:
    nameservers: list[str] = []
    search: tuple[str, ...] = ()
    ndots = 1
    for raw in text.splitlines():
        fields = raw.split("#", 1)[0].split(";", 1)[0].split()
        if not fields:
            continue
        key, values = fields[0], fields[1:]
        if key == "nameserver" and values:
            nameservers.append(values[0])
        elif key in ("search", "domain"):
            # The last search/domain line wins, as in glibc.
            search = tuple(v.rstrip(".").lower() for v in values)
        elif key == "options":
            for option in values:
                name, _, value = option.partition(":")
                if name == "ndots" and value.isascii() and value.isdigit():
                    ndots = min(int(value), 15)
    return ResolvConf(tuple(nameservers), search, ndots)
