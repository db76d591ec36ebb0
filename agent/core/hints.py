"""Likely causes of a stuck wait, keyed on the typed causes seen: pure, shared by timeouts and
``doctor``."""

from __future__ import annotations

from collections.abc import Sequence

from agent.core.causes import DNS_CAUSES, Cause
from agent.topology.model import Topology
from agent.topology.podfiles import ResolvConf

__all__ = ["hints_for", "nobody_listens"]


def nobody_listens(
    causes: Sequence[Cause | None], port: int, *, own: int | None, probe_port: int | None = None
) -> str | None:
    """Every missing peer resolves, but its pod refuses the agent's port: their agents have not
    started yet (the usual case: an image pull, init containers), or have left. ``causes``: one
    per peer, None for a reached one; ``own``: this pod's index (None: not one of the peers).

    "They passed the barrier and left" is said only when it can be true: when no peer but this
    pod is reached. A peer reached that had been released would have released this pod too (a
    late joiner); one reached and waiting means the barrier has not released, nor can it
    without this pod. And a pod that is not one of the peers holds no barrier with them.

    ``probe_port``: ``--probe tcp:PORT``'s port, which is what refused then: the workload's,
    not the agent's (whose agents may well be up: an outside review)."""
    missing = [c for c in causes if c is not None]
    if not missing or any(c != Cause.CONNECT_REFUSED for c in missing):
        return None
    if probe_port is not None:
        return (
            f"the peers resolve and their pods answer, but nobody listens on port {probe_port} "
            f"(--probe tcp:{probe_port}): the workload in those pods has not opened it yet, or "
            "listens on another port"
        )
    hint = (
        f"the peers resolve and their pods answer, but nobody listens on port {port}: their "
        "agents have not started yet (an image pull, init containers before them), or listen "
        "on another --port"
    )
    others_reached = any(c is None for i, c in enumerate(causes) if i != own)
    if own is None or others_reached:
        return hint
    return hint + (
        "; or this pod restarted after they passed the barrier and left (wait and run modes): "
        "only sidecar mode lets a pod that restarts after the barrier rejoin"
    )


def hints_for(
    topology: Topology,
    resolv: ResolvConf | None,
    reasons: Sequence[str],
    causes: Sequence[Cause | None],
    *,
    port: int,
    probe_port: int | None = None,
) -> list[str]:
    """``causes``: why each peer is missing (None for a reached one), what the hints key on;
    ``reasons``: the same as text, only quoted; ``resolv``: the pod's resolv.conf when the agent
    relies on it (None when --dns-server overrides it)."""
    missing = [c for c in causes if c is not None]
    hints = [
        _no_search_list(topology, resolv),
        _not_in_dns(topology, causes, missing),
        _not_asked(missing),
        _replaced(missing),
        _stale_record(missing),
        _dns_failing(reasons, causes),
        nobody_listens(causes, port, own=topology.index, probe_port=probe_port),
        _token_mismatch(missing),
        _unlisted_source(missing),
        _no_answer(missing),
    ]
    return [hint for hint in hints if hint is not None]


def _no_search_list(topology: Topology, resolv: ResolvConf | None) -> str | None:
    if resolv is None or resolv.has_cluster_search(topology.namespace, topology.zone):
        return None
    return (
        "/etc/resolv.conf has no cluster search list "
        f"('{topology.namespace}.svc.{topology.zone}'): the pod's dnsPolicy is Default or "
        "None, so short peer names do not resolve; use dnsPolicy: ClusterFirst"
    )


def _not_in_dns(
    topology: Topology, causes: Sequence[Cause | None], missing: Sequence[Cause]
) -> str | None:
    if causes and len(missing) == len(causes) and all(c == Cause.NXDOMAIN for c in missing):
        # A launcher's hostfile names pods of no Service it knows: only the generic hint then.
        service = f"is '{topology.service}'" if topology.service else "is there"
        return (
            f"no peer name resolved, not even this pod's own: {service} a headless "
            "Service selecting the Job's pods, with publishNotReadyAddresses: true? (Kubernetes "
            "publishes a pod that is not Ready, e.g. in an init container, only with it)"
        )
    if missing and all(c in DNS_CAUSES for c in missing):
        return (
            "the missing peers are not in DNS: their pods may not have started yet (check "
            "parallelism and quota), or are not Ready without publishNotReadyAddresses: true"
        )
    return None


def _not_asked(missing: Sequence[Cause]) -> str | None:
    if Cause.NOT_ASKED in missing:  # what DNS publishes is not known: not the hint above's
        return (
            "the Service's DNS answer is cut short (more pods than one answer lists) and says "
            "nothing of the peers it leaves out: this pod asks their names a few at a time; "
            "the reports of the other pods (their neighbours) say why those are not reached"
        )
    return None


def _replaced(missing: Sequence[Cause]) -> str | None:
    if Cause.REPLACED in missing:
        return (
            "this pod was replaced: its own name leads to a newer instance of it, and this one "
            "runs on in the old pod (terminating, or on a node cut off from the API server); "
            "its peers go on with the new one"
        )
    return None


def _stale_record(missing: Sequence[Cause]) -> str | None:
    if Cause.STRANGER in missing or Cause.OTHER_INSTANCE in missing:
        return (
            "an address answered as another pod: a stale DNS record of a replaced pod (it clears "
            "within the DNS TTL), or another job using the same names"
        )
    return None


def _dns_failing(reasons: Sequence[str], causes: Sequence[Cause | None]) -> str | None:
    failures = sorted({r for r, c in zip(reasons, causes, strict=True) if c == Cause.DNS_FAILED})
    if not failures:
        return None
    shown = "; ".join(failures[:3])
    return (
        f"cluster DNS itself is failing ({shown}): check that the "
        "nameserver (--dns-server or /etc/resolv.conf) is reachable on port 53, UDP and TCP "
        "(NetworkPolicy egress), and the health and logs of the CoreDNS pods"
    )


def _token_mismatch(missing: Sequence[Cause]) -> str | None:
    if Cause.REFUSED_BY_PEER in missing or Cause.WRONG_TOKEN in missing:
        return (
            "a peer and this pod do not share the token (another value, or one of them has "
            "none): every pod of the Job must read the same Secret key through --token-file or "
            "PEER_AGENT_TOKEN_FILE"
        )
    return None


def _unlisted_source(missing: Sequence[Cause]) -> str | None:
    if Cause.UNLISTED_SOURCE in missing:  # its agent has started: it talks from elsewhere
        return (
            "a missing peer's index is claimed from an address DNS does not list for it "
            "(named above), and counts only from its pod's address: if that peer's agent is "
            "up, check that its --listen is the pod IP, not another interface (a service mesh "
            "or proxy that rewrites source addresses needs --token-file, recommended, or "
            "--trust-source any); if its pod is not running, another process claims its index "
            "(--token-file keeps such out)"
        )
    return None


def _no_answer(missing: Sequence[Cause]) -> str | None:
    if Cause.CONNECT_TIMEOUT in missing:  # a probe's connect, not a DNS query
        return "peers resolve but do not answer: check NetworkPolicy and the agent's port"
    return None
