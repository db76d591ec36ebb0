"""Outsiders against the in-memory cluster of shipped cores: agents in pods the Service does not
select (DNS never lists them) claiming members' indices, more of them than the coordinator holds
(``agent.core.admission.HELD``). They are never counted, the Job passes as soon as its last pod
comes, and the coordinator never holds more of them than the bound (issue 21, hole 1)."""

from __future__ import annotations

import functools

import pytest

from agent.core.admission import HELD
from tests.sim.checks import BOUND, LINGER, assert_released, start
from tests.sim.cluster import Cluster, Node

pytestmark = pytest.mark.timeout(60)


def _held(node: Node) -> int:
    return sum(node.agent.is_holding(conn) for conn in node.channels)


@pytest.mark.parametrize("mode", ["wait", "sidecar"])
def test_a_crowd_of_outsiders_claiming_members_neither_counts_nor_stops_the_barrier(
    mode: str,
) -> None:
    """Twenty outsiders claim pods 1 and 2 from addresses of their own before pod 2 starts, and
    keep dialling as their sessions are closed. The coordinator holds at most HELD.per_index of
    them for each index, and everyone passes within the usual bound once pod 2 comes."""
    c = Cluster(3, seed=7, mode=mode)
    start(c, {0: 0.0, 1: 0.0})
    for k in range(20):
        c.at(0.05 * k, functools.partial(c.start, 1 + k % 2, outsider=True))
    most = 0
    for step in range(1, 21):
        c.run_until(0.1 * step)
        most = max(most, _held(c.current()[0]))
    start(c, {2: 2.0})
    c.run_until(2.0 + BOUND + LINGER)
    assert 0 < most <= 2 * HELD.per_index
    assert_released(c, after=2.0, by=2.0 + BOUND)
