"""The barrier's safety property at instance level, checked against ground truth.

Shared by the timed cluster (cluster.py) and the exhaustive explorer (explore.py). Instances are
named ``<serial>.<index>`` in both. The property, for every instance released at time t:

- **counted** (released by a coordinator's own decision, or by its Release naming a view this
  instance arrived with): some decision at or before t counted this instance for its index;
- **late** (told that the barrier passed before): some decision was made at or before t, and this
  instance had itself heard a hello from an instance of every index by t;

and for every decision: each member's last arrival the coordinator held came from the instance
the decision counts for it, and every counted instance had heard every other counted instance's
hello (in a probe) at or before the decision.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from agent.protocol.instance import order

__all__ = ["Decision", "Release", "violations"]


@dataclass(frozen=True)
class Decision:
    """A coordinator released everyone: when, who, the instance of each index it counted, and
    the instance each member's last arrival it held came from."""

    at: float
    by: str
    view: Mapping[int, str]
    arrived: Mapping[int, str]


@dataclass(frozen=True)
class Release:
    instance: str
    at: float
    counted: bool

    @property
    def index(self) -> int:
        return index_of(self.instance)


def index_of(instance: str) -> int:
    """The simulated cluster tags each instance id with its index (``Cluster.identity``)."""
    return order(instance)[1] & 0x3FF  # the low 10 bits of the tie-break (tests/sim/draws.py)


def violations(
    n: int,
    heard: Mapping[tuple[str, str], float],
    decisions: Iterable[Decision],
    released: Iterable[Release],
) -> list[str]:
    out = []
    decisions = list(decisions)
    for d in decisions:
        for i, instance in d.view.items():
            if i != index_of(d.by) and d.arrived.get(i) != instance:
                got = d.arrived.get(i) or "nobody"
                out.append(f"{d.by} at {d.at} counted {instance} for {i}; it held {got}'s arrival")
        for a in d.view.values():
            for b in d.view.values():
                if heard.get((a, b), float("inf")) > d.at:
                    out.append(f"{d.by} released at {d.at}: {a} had not reached {b}")
    for r in released:
        before = [d for d in decisions if d.at <= r.at]
        if r.counted:
            if not any(d.view.get(r.index) == r.instance for d in before):
                out.append(f"{r.instance} released at {r.at} as counted; no decision counted it")
            continue
        if not before:
            out.append(f"{r.instance} released late at {r.at}; nobody had decided a release")
        for i in range(n):
            times = [t for (a, b), t in heard.items() if a == r.instance and index_of(b) == i]
            if not any(t <= r.at for t in times):
                out.append(f"{r.instance} released late at {r.at} before it reached any {i}")
    return out
