"""A Job bigger than every bound, through a crowd of outsiders, on the in-memory cluster of
shipped cores, every bound at its shipped value (read from the code, never copied): more pods
than probes in flight (``agent.io.limits.MAX_IN_FLIGHT``) and than the port's handshake bound
(``MAX_HANDSHAKING``), with more outsiders claiming some members than the coordinator holds for
one pod (``agent.core.admission.HELD``). Every pod passes, no agent has more sockets open than
the descriptors it reserves (``fds_needed``), and the coordinator never holds more than the
bound for any pod."""

from __future__ import annotations

import collections
import functools

import pytest

from agent.core.admission import HELD
from agent.io.limits import MAX_HANDSHAKING, MAX_IN_FLIGHT, fds_needed
from agent.protocol.wire import EXIT_BARRIER
from tests.sim.checks import BOUND, start
from tests.sim.cluster import Cluster, Node

N = 300
CLAIMED = 8  # indices the crowd claims, 2 * HELD.per_index outsiders each
CROWD = CLAIMED * 2 * HELD.per_index


def _held_by_index(coordinator: Node) -> collections.Counter[int]:
    held = collections.Counter[int]()
    for conn, end in coordinator.channels.items():
        if coordinator.agent.is_holding(conn) and end.peer is not None:
            held[end.peer.node.me.index] += 1
    return held


@pytest.mark.slow
@pytest.mark.timeout(900)
# sidecar: about 40 s; exit (its start barrier serving on, then the exit barrier) about four
# times that, so it is left to a scale run
@pytest.mark.parametrize("mode", ["sidecar"])
def test_a_job_bigger_than_every_bound_passes_through_a_crowd(mode: str) -> None:
    assert max(MAX_IN_FLIGHT, MAX_HANDSHAKING) < N
    c = Cluster(N, seed=11, mode=mode, workload=1.0)
    start(c, {i: 0.001 * i for i in range(N)})
    for k in range(CROWD):  # from addresses DNS never lists, before and while the Job starts
        c.at(0.01 * k, functools.partial(c.start, 1 + k % CLAIMED, outsider=True))
    most = 0
    for step in range(1, 21):
        c.run_until(0.1 * step)
        most = max(most, *_held_by_index(c.current()[0]).values(), 0)
    c.run_until(0.3 + 3 * BOUND + (1.0 + BOUND if mode == "exit" else 0.0))
    assert c.unsafe() == [], c.describe()
    barriers = ["", EXIT_BARRIER] if mode == "exit" else [""]
    for barrier in barriers:
        current = c.current(barrier)
        assert sorted(current) == list(range(N))
        assert all(n.verdict is not None and n.counted for n in current.values())
    assert 0 < most <= HELD.per_index
    assert max(n.most_sockets for n in c.nodes) <= fds_needed(N)
