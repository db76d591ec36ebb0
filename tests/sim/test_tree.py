"""The tree of coordinators in the in-memory cluster (``--reach sparse``, groups of ⌈√N⌉):
sessions go to each pod's group coordinator, the release fans out through them, and a group
coordinator or the root replaced before the release is a lost session below and above it,
judged by the checker (tests/sim/safety.py) and the liveness rule."""

from __future__ import annotations

import functools

import pytest

from agent.core.group import GroupCoordinator
from agent.core.groups import Tree
from agent.core.member import Member
from tests.sim.checks import assert_released, start
from tests.sim.cluster import Cluster
from tests.sim.killers import LIVE, judge

pytestmark = pytest.mark.timeout(120)

N, DEGREE = 12, 4  # groups of 4: {0-3} (the root's), {4-7}, {8-11}


def _started(mode: str = "sidecar") -> Cluster:
    c = Cluster(N, mode=mode, degree=DEGREE, seed=3)
    for index in range(N):
        c.at(0.0, functools.partial(c.start, index))
    return c


def _dialled(c: Cluster) -> set[tuple[int, int]]:
    """(member index, coordinator index) of every session the network carried."""
    index = {p.instance: p.index for p in c.truth.processes.values()}
    return {(index[s.client], index[s.server]) for s in c.truth.sessions}


def test_every_pod_holds_its_session_with_its_group_coordinator() -> None:
    """Fault-free: the root serves only group 0 and the other groups' coordinators, each group
    coordinator its own members, and every pod is released through them."""
    c = _started("wait")
    c.run_until(10.0)
    assert judge(c, 0.0) == []
    tree = Tree.of(N)
    assert _dialled(c) == {(i, tree.parent(i)) for i in range(1, N)}
    assert {(4, 0), (8, 0), (5, 4), (11, 8), (3, 0)} <= _dialled(c)


@pytest.mark.parametrize("replaced", [4, 0], ids=["group-coordinator", "root"])
@pytest.mark.parametrize("mode", ["wait", "sidecar"])
def test_a_coordinator_replaced_before_the_release_is_a_lost_session_below_and_above(
    replaced: int, mode: str
) -> None:
    """Pod ``replaced`` crashes at 0.5 s and its new pod starts 1 s later, while pod 11 has
    not started yet (so the crash is before the release, however fast the rest arrive): its
    members dial the new instance, nobody counts the old one, and every pod is released."""
    c = Cluster(N, mode=mode, degree=DEGREE, seed=3)
    start(c, {i: 0.0 for i in range(N - 1)} | {N - 1: 2.0})
    c.at(0.5, lambda: c.restart(replaced, gap=1.0))
    c.run_until(1.5 + LIVE + 10)
    assert judge(c, 1.5) == []
    new = max(
        (p for p in c.truth.processes.values() if p.index == replaced), key=lambda p: p.started
    )
    children = Tree.of(N).children(replaced)
    assert children <= {
        c.truth.processes[s.client].index for s in c.truth.sessions if s.server == new.instance
    }


def test_a_replaced_group_coordinator_after_the_release_tells_its_members_so() -> None:
    """Sidecars: group coordinator 8 replaced after the release; its members' new sessions
    with the new instance, and the new instance itself, are late joiners, all released."""
    c = _started("sidecar")
    c.at(4.0, lambda: c.restart(8, gap=0.5))
    c.at(4.6, lambda: c.restart(9, gap=0.0))
    c.run_until(4.6 + LIVE + 10)
    assert judge(c, 4.6) == []


@pytest.mark.parametrize("replaced", [4, 0], ids=["group-coordinator", "root"])
@pytest.mark.parametrize("mode", ["wait", "sidecar"])
def test_a_coordinator_replaced_while_its_old_instance_runs_on_stalls_nobody(
    replaced: int, mode: str
) -> None:
    """The outside review's run: pod 11 held back; once the others arrived, pod ``replaced``
    gets a new instance at a new address and DNS moves its name and the Service's entry there,
    while the old instance runs on; then pod 11 starts. Its members (and, for a group
    coordinator, the root) leave the old instance, which never counts; every pod is
    released."""
    c = Cluster(N, mode=mode, degree=DEGREE, seed=3)
    start(c, {i: 0.0 for i in range(N - 1)})
    c.run_until(3.0)
    old = c.current()[replaced]
    children = sorted(Tree.of(N).children(replaced))
    assert all(node.verdict is None for node in c.current().values()), c.describe()
    sides = [c.current()[i].agent.side for i in children if c.current()[i].reach.done]
    uplinks = [s.up if isinstance(s, GroupCoordinator) else s for s in sides]
    waiting = "arrived, waiting for the verdict"
    assert all(isinstance(u, Member) and u.last_problem == waiting for u in uplinks), c.describe()
    c.start(replaced, keep_old=True)
    old.pod.withdrawn_at = c.now  # its records go; its agent does not
    c.answers.withdrawn()  # what the cluster's own withdrawals say: no kept answer lists it
    c.at(4.0, functools.partial(c.start, N - 1))
    c.run_until(4.0 + LIVE + 10)
    assert_released(c, after=4.0, by=4.0 + LIVE)
    new = c.current()[replaced]
    served = {
        c.truth.processes[s.client].index for s in c.truth.sessions if s.server == new.me.instance
    }
    assert set(children) <= served, c.describe()
