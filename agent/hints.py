"""Likely causes of a stuck wait, from what was seen: pure, shared by timeouts and ``doctor``."""

from __future__ import annotations

from collections.abc import Sequence

from agent.podfiles import ResolvConf
from agent.topology import Topology

__all__ = ["hints_for", "nobody_listens"]

#: how the resolver names a failure of DNS itself (as opposed to a name that does not exist)
_DNS_FAILURES = ("DNS timeout", "SERVFAIL", "REFUSED", "DNS error")


def nobody_listens(reasons: Sequence[str], port: int) -> str | None:
    """Every missing peer resolves, but its pod refuses the agent's port: their agents are
    gone, most likely because they passed the barrier already and this pod restarted after."""
    missing = [r for r in reasons if r]
    if not missing or not all("refused" in r and "NXDOMAIN" not in r for r in missing):
        return None
    return (
        f"the peers resolve and their pods answer, but nobody listens on port {port}: they "
        "may have passed the barrier already and left (wait and run modes); only sidecar mode "
        "lets a pod that restarts after the barrier rejoin"
    )


def hints_for(
    topology: Topology, resolv: ResolvConf | None, reasons: Sequence[str], *, port: int
) -> list[str]:
    """``reasons``: the last failure of each peer ('' for a reached one); ``resolv``: the pod's
    resolv.conf when the agent relies on it (None when --dns-server overrides it)."""
    hints: list[str] = []
    missing = [r for r in reasons if r]
    if resolv is not None and not resolv.has_cluster_search(topology.namespace, topology.zone):
        hints.append(
            "/etc/resolv.conf has no cluster search list "
            f"('{topology.namespace}.svc.{topology.zone}'): the pod's dnsPolicy is Default or "
            "None, so short peer names do not resolve; use dnsPolicy: ClusterFirst"
        )
    all_nxdomain = bool(reasons) and len(missing) == len(reasons)
    if all_nxdomain and all(r == "NXDOMAIN" for r in missing):
        # A launcher's hostfile names pods of no Service it knows: only the generic hint then.
        service = f"is '{topology.service}'" if topology.service else "is there"
        hints.append(
            f"no peer name resolved, not even this pod's own: {service} a headless "
            "Service selecting the Job's pods, with publishNotReadyAddresses: true? (Kubernetes "
            "publishes a pod that is not Ready, e.g. in an init container, only with it)"
        )
    elif missing and all("NXDOMAIN" in r or "not among" in r for r in missing):
        hints.append(
            "the missing peers are not in DNS: their pods may not have started yet (check "
            "parallelism and quota), or are not Ready without publishNotReadyAddresses: true"
        )
    if any("identity mismatch" in r for r in missing):
        hints.append(
            "an address answered as another pod: a stale DNS record of a replaced pod (it clears "
            "within the DNS TTL), or another job using the same names"
        )
    dns_failures = [f for f in _DNS_FAILURES if any(f in r for r in missing)]
    if dns_failures:
        hints.append(
            f"cluster DNS itself is failing ({', '.join(dns_failures)}): check that the "
            "nameserver (--dns-server or /etc/resolv.conf) is reachable on port 53, UDP and TCP "
            "(NetworkPolicy egress), and the health and logs of the CoreDNS pods"
        )
    if (hint := nobody_listens(reasons, port)) is not None:
        hints.append(hint)
    if any("timed out" in r for r in missing):  # a probe's connect, not a DNS query
        hints.append("peers resolve but do not answer: check NetworkPolicy and the agent's port")
    return hints
