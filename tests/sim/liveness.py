"""What liveness the property tests demand of a barrier, and of which instance of each index.

Each index's *latest instance* of a barrier is the one in its latest agent process (the pod's
newest sidecar), not the one started last: while a pod is replaced (an ``overlap``), its old
process may still ask for a name after its successor asked for it. That instance is an older one
(its instance id is its process's), its name leads to the successor, and it is gone by the time
faults stop: docs/guarantee.md promises it nothing, as for the old start barrier instance.
"""

from __future__ import annotations

from hypothesis import event

from agent.core.effects import Released
from agent.core.timing import DEFAULT_TIMING
from agent.protocol.wire import EXIT_BARRIER, START_BARRIER
from tests.sim.cluster import CONNECT_TIMEOUT, KEEPALIVE, Cluster, Node

LINGER = DEFAULT_TIMING.ack_linger
SETTLE = CONNECT_TIMEOUT + 2.0  # a redial: a connect timing out, the backoff cap, round trips
LIVE = KEEPALIVE + SETTLE


def latest(c: Cluster, barrier: str) -> dict[int, Node]:
    """Each index's latest agent process's instance of ``barrier`` (its last, if a client asked
    again), for the indices whose latest process has one."""
    found: dict[int, Node] = {}
    for index, agent in c.current(START_BARRIER).items():
        mine = [node for node in agent.process if node.me.barrier == barrier]
        if mine:
            found[index] = mine[-1]
    return found


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
    current = latest(c, barrier)
    assert sorted(current) == list(range(c.peers)), f"barrier {barrier!r}\n{state}"
    for node in current.values():
        assert isinstance(node.verdict, Released), state
        assert node.verdict_at is not None and node.verdict_at <= by, state
        assert node.left_at is not None and node.left_at <= by + lingers, state
    return max(n.verdict_at or 0.0 for n in current.values())
