"""The in-memory cluster on a sparse graph (``--reach sparse``): the shipped cores, schedules
with restarts and partitions, judged by the checker (tests/sim/safety.py: every assigned edge
proven both ways between the counted instances) and the liveness rule."""

from __future__ import annotations

import functools
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, example, given, settings

from agent.core.groups import Tree
from tests.sim.cluster import Cluster
from tests.sim.killers import judge
from tests.sim.test_barrier_properties import (
    Fault,
    Schedule,
    check_liveness,
    schedules,
    simulate,
)
from tests.support.budget import budget

pytestmark = pytest.mark.timeout(120)


def _started(
    n: int, degree: int, *, mode: str = "wait", seed: int = 0, probe: str = "tcp"
) -> Cluster:
    c = Cluster(n, mode=mode, degree=degree, seed=seed, probe=probe)
    for index in range(n):
        c.at(0.0, functools.partial(c.start, index))
    return c


@pytest.mark.timeout(300)
@settings(
    max_examples=budget(8),
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)
@given(
    schedules(modes=("wait", "sidecar", "run"))
    .filter(lambda s: s.n >= 6)
    .map(lambda s: replace(s, degree=4))
)
@example(  # pod 0 restarted in place at once; pod 5, its Service answer late, heard the new
    # instance first (unvouched: a sighting), then reached the old one's last answer there: the
    # sighting was taken as answered, so pod 5's sums named the old instance for ever
    Schedule(
        n=6,
        mode="wait",
        seed=0,
        starts=(0.0,) * 6,
        faults=(Fault("restart", 0.0, 0, 0, 0.0, False, False),),
        drop=0.0,
        delay=0.001,
        dns_delay=0.0,
        probe="tcp",
        views=((0.0, 0.0, 0.0),) * 5 + ((0.0, 0.0, 1.0),),
        clock_skew=0.0,
        names=(),
        workload=0.0,
        exit_codes=(0,) * 6,
        degree=4,
    )
)
def test_sparse_graph_safe_always_and_live_once_faults_stop(s: Schedule) -> None:
    """The property tests' schedules (restarts, resets, partitions, outsiders, drops, DNS
    lag, every probe) with ring-of-4 graphs of 6-8 pods: every release proved its edges both
    ways between the counted instances, and every pod is released once the faults stop."""
    c, faults_end = simulate(s)
    assert c.unsafe() == [], c.describe()
    check_liveness(c, faults_end, s)


@pytest.mark.parametrize("probe", ["tcp", "icmp"])
def test_a_partition_into_groups_that_cannot_reach_each_other_never_releases(probe: str) -> None:
    """Pods 0-5 and 6-11 cannot reach each other (a zone, a NetworkPolicy): the sparse graph
    is connected, so an assigned edge crosses the split and nobody is released, though every
    pod reaches the coordinator's side of its own group."""
    n = 12
    c = _started(n, 4, probe=probe)
    for a in range(n):
        for b in range(n):
            if (a < 6) != (b < 6) and b != 0 and a != 0:
                c.blocked.add((a, b))
    c.run_until(20.0)
    assert c.unsafe() == []
    assert not any(v.released for v in c.truth.verdicts.values())


def test_a_sparse_pod_probes_only_its_neighbours() -> None:
    """Every pod but a coordinator hears only its neighbours, itself and its group's
    coordinator (a coordinator may look at any of its members that has not arrived)."""
    c = _started(40, 6)
    c.run_until(15.0)
    assert judge(c, 0.0) == []
    graph = c.truth.graph
    assert graph is not None
    index_of = {p.instance: p.index for p in c.truth.processes.values()}
    tree = Tree.of(40)
    for listener, speaker in c.truth.heard:
        i, j = index_of[listener], index_of[speaker]
        assert tree.coordinates(i) or j in (*graph.neighbours(i), tree.parent(i), i), (i, j)
