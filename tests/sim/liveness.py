"""What liveness the property tests (test_barrier_properties.py) demand of a barrier."""

from __future__ import annotations

from hypothesis import event

from agent.core.effects import Released
from agent.core.timing import DEFAULT_TIMING
from agent.protocol.wire import EXIT_BARRIER
from tests.sim.cluster import CONNECT_TIMEOUT, KEEPALIVE, Cluster

LINGER = DEFAULT_TIMING.ack_linger
SETTLE = CONNECT_TIMEOUT + 2.0  # a redial: a connect timing out, the backoff cap, round trips
LIVE = KEEPALIVE + SETTLE


def claimed(c: Cluster, barrier: str, faults_end: float) -> bool:
    """Liveness is claimed unless the barrier's coordinator may have left (it does not wait for
    ever) before faults stopped early enough for a member cut off at the release to redial."""
    leaves = c.mode in ("wait", "run") if barrier == "" else barrier == EXIT_BARRIER
    nodes = [n for n in c.nodes if n.me.barrier == barrier and isinstance(n.verdict, Released)]
    releases = [n.verdict_at for n in nodes if n.verdict_at is not None]
    if leaves and releases and faults_end > min(releases) + LINGER - SETTLE:
        event("liveness not claimed: faults went on past the coordinator's linger")
        return False
    return True


def released(c: Cluster, barrier: str, by: float, *, lingers: float) -> float:
    """Every index's latest instance in ``barrier`` released by ``by`` and done waiting within
    ``lingers`` of that; returns the last release."""
    state = c.describe()
    current = c.current(barrier)
    assert sorted(current) == list(range(c.peers)), f"barrier {barrier!r}\n{state}"
    for node in current.values():
        assert isinstance(node.verdict, Released), state
        assert node.verdict_at is not None and node.verdict_at <= by, state
        assert node.left_at is not None and node.left_at <= by + lingers, state
    return max(n.verdict_at or 0.0 for n in current.values())
