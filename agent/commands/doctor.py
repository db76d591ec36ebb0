"""``peer-agent doctor``: one pass over every peer, never waiting: what DNS and the probe say."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable

import anyio

from agent.config.model import Config, TrustSource
from agent.core.causes import Cause
from agent.core.hints import hints_for
from agent.core.inputs import Reached, Resolution
from agent.io.probes import probe
from agent.io.runner import identity_of, resolver_for
from agent.protocol.wire import Identity
from agent.values import value

__all__ = ["DoctorReport", "PeerRow", "diagnose"]

#: a topology without one Service that lists every peer (the Training Operator's per-replica
#: Services, a hostfile of names in several Services)
_NO_SERVICE = "none (each peer is asked for by its own name)"


@value
class PeerRow:
    index: int
    name: str
    dns: str  # addresses, or the DNS problem
    probe: str  # "ok", or the probe's reason
    cause: Cause | None = None  # why it is not ok

    @property
    def ok(self) -> bool:
        return self.probe == "ok"


@value
class DoctorReport:
    facts: tuple[tuple[str, str], ...]
    rows: tuple[PeerRow, ...]
    hints: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.rows)

    def table(self) -> str:
        """What ``peer-agent doctor`` prints: the facts, a row per peer, hints, the verdict."""
        width = max(len(k) for k, _ in self.facts)
        lines = [f"{k.ljust(width)}  {v}" for k, v in self.facts]
        headers = ("#", "peer", "dns", "probe")
        rows = [(str(r.index), r.name, r.dns, r.probe) for r in self.rows]
        widths = [max(len(x) for x in col) for col in zip(headers, *rows, strict=False)]
        lines.append("")
        for row in (headers, *rows):
            cells = zip(row, widths, strict=True)
            lines.append("  ".join(cell.ljust(w) for cell, w in cells).rstrip())
        lines += [f"hint: {h}" for h in self.hints]
        lines.append("all peers reachable" if self.ok else "some peers are not reachable")
        return "\n".join(lines)


def _trust(config: Config) -> str:
    """Whose contacts count: what to check when contacts are held (a mesh, host network)."""
    if config.token is not None:
        return "token: peers prove it, wherever their contacts come from"
    if config.trust_source == TrustSource.ANY:
        return "any source (--trust-source any): no token, so anything reaching the port counts"
    return (
        "contacts from addresses DNS lists for the Service (no token); behind a mesh that "
        "rewrites source addresses, set --token-file or --trust-source any"
    )


def _diagnostic(config: Config) -> Identity:
    """This pod's identity without an instance: doctor is not the pod's agent, and a hello
    with a newer instance would make every peer take the agent for an old pod (``reach``)."""
    return dataclasses.replace(identity_of(config), instance="")


async def _row(
    config: Config, index: int, resolve: Callable[[str], Awaitable[Resolution]]
) -> PeerRow:
    t = config.topology
    resolution = await resolve(t.fqdn(index))
    if (failure := resolution.failure) is not None:
        return PeerRow(index, t.display(index), failure.reason, "not tried", failure.cause)
    failures = []
    listed = " ".join(resolution.addresses)
    for address in resolution.addresses:
        result = await probe(
            config.probe, address, me=_diagnostic(config), target=index, token=config.token
        )
        if isinstance(result, Reached):
            return PeerRow(index, t.display(index), listed, "ok")
        failures.append(result.failure)
    reasons = "; ".join(f.reason for f in failures)
    return PeerRow(index, t.display(index), listed, reasons, failures[0].cause)


def _host_port(host: str, port: int) -> str:
    """`host:port`, with an IPv6 literal in brackets (`[fd00::10]:53`), as users write it."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def diagnose(
    config: Config, *, resolve: Callable[[str], Awaitable[Resolution]] | None = None
) -> DoctorReport:
    t, resolv = config.topology, config.resolv
    servers = config.dns_servers or tuple((s, 53) for s in resolv.nameservers)
    facts = [
        ("topology", t.describe()),
        ("values", t.sources.describe()),
        ("pod", f"{config.hostname} (index {t.index} of {t.peers})"),
        ("job", t.job + (f" (uid {config.job_uid})" if config.job_uid else "")),
        ("service", f"{t.service or _NO_SERVICE} in namespace {t.namespace}, zone {t.zone}"),
        ("peer names", f"{t.fqdn(0)} … {t.fqdn(t.peers - 1)}"),
        ("dns servers", " ".join(_host_port(h, p) for h, p in servers) or "none"),
        ("resolv.conf search", " ".join(resolv.search) or "(none)"),
        ("resolv.conf ndots", str(resolv.ndots)),
        ("probe", f"{config.probe} (agent port {config.port})"),
        ("trust", _trust(config)),
    ]
    if resolve is None:
        resolve = resolver_for(config)
    rows: dict[int, PeerRow] = {}
    limiter = anyio.CapacityLimiter(64)

    async def one(index: int) -> None:
        async with limiter:
            rows[index] = await _row(config, index, resolve)

    async with anyio.create_task_group() as tg:
        for index in t.indices:
            tg.start_soon(one, index)
    ordered = tuple(rows[i] for i in t.indices)
    reasons = ["" if r.ok else (r.dns if r.probe == "not tried" else r.probe) for r in ordered]
    causes = [None if r.ok else r.cause for r in ordered]
    hints = hints_for(
        t, config.pod_resolv, reasons, causes, port=config.port, probe_port=config.probe.port
    )
    return DoctorReport(tuple(facts), ordered, tuple(hints))
