"""Accessors and helpers the framework rules share: malformed input reads as absent."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from agent.lint.agent_use import AgentUse, agent_use
from agent.lint.finding import Finding, as_list, as_map
from agent.topology.model import is_dns_label
from agent.values import value

__all__ = ["Agent", "Report", "agents_in", "as_int", "as_list", "as_map", "long_name"]

Report = Callable[..., Finding]


def as_int(x: object, default: int) -> int:
    return x if isinstance(x, int) and not isinstance(x, bool) else default


@value
class Agent:
    """A container that runs peer-agent, and where it is in the manifest."""

    path: str
    spec: dict[Any, Any]
    init: bool
    use: AgentUse


def agents_in(pod: dict[Any, Any], base: str) -> list[Agent]:
    found = []
    for key, init in (("initContainers", True), ("containers", False)):
        for i, raw in enumerate(as_list(pod.get(key))):
            c = as_map(raw)
            use = agent_use(c)
            if use is not None:
                label = c.get("name") if isinstance(c.get("name"), str) else str(i)
                found.append(Agent(f"{base}.{key}[{label}]", c, init, use))
    return found


def long_name(report: Report, field: str, hostname: str, what: str) -> Iterator[Finding]:
    if hostname and not is_dns_label(hostname):
        yield report(
            field,
            f"the pod hostname {hostname!r} ({what}) is not a DNS-1123 label of at most 63 "
            "characters: the controller's pods are rejected or get no DNS name",
            "shorten the name",
        )
