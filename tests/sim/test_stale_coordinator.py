"""A live old instance of index 0 that DNS no longer lists, on the in-memory cluster of shipped
cores: the outside review's break (docs/guarantee.md, two live instances of index 0).

Pod 0 is replaced while its old instance runs on (a terminating pod, a node cut off from the API
server): the new instance starts at a new address, and DNS moves pod 0's name and the Service's
entry there; the old instance stays up past everyone. The new instance, every member and a pod
that starts last are released within the liveness bound; the old instance releases nobody, is
released by nobody, and finds out from its own name that it was replaced.
"""

from __future__ import annotations

import pytest

from agent.core.causes import Cause
from agent.core.effects import Released
from tests.sim.checks import BOUND, LINGER, assert_released, start
from tests.sim.cluster import Cluster, Node

pytestmark = pytest.mark.timeout(60)

#: when the old instance finds out at the latest with nobody to tell it: its first look-around
#: and the own-name checks after it (1 s, then 2 s, 4 s ...), each one attempt by name
FINDS_OUT = 1.0 + 2.0 + BOUND


def _replace_zero(c: Cluster, *, moved: bool = True) -> Node:
    """A new instance of index 0 in a new pod; the old instance runs on. DNS lists only the
    new one from now on, for the name and the Service (``moved``), or both (a terminating pod
    stays published with publishNotReadyAddresses). Returns the old one."""
    old = c.current()[0]
    c.start(0, keep_old=True)
    if moved:
        old.pod.withdrawn_at = c.now  # its records go; its agent does not
        c.answers.withdrawn()  # what the cluster's own withdrawals say: no kept answer lists it
    return old


def _member_with_the_old_one(c: Cluster) -> None:
    """Before the move: member 1 holds a session with the old instance."""
    member = c.current()[1].member
    assert member is not None and member.conn is not None, c.describe()


#: (who starts when, partitions until pod 0 is replaced, when it is)
SCENARIOS = [
    pytest.param({0: 0.0, 1: 0.0, 2: 3.0}, set(), 2.0, id="replaced-before-the-last-pod-starts"),
    pytest.param({0: 0.0, 1: 0.0, 2: 0.0}, {(2, 0)}, 2.0, id="replaced-while-it-waits-reached-all"),
]


@pytest.mark.parametrize("mode", ["wait", "sidecar"])
@pytest.mark.parametrize("moved", [True, False], ids=["dns-moved", "both-listed"])
@pytest.mark.parametrize("starts, cut, at", SCENARIOS)
def test_a_live_replaced_coordinator_stalls_nobody(
    starts: dict[int, float], cut: set[tuple[int, int]], at: float, moved: bool, mode: str
) -> None:
    """The reviewer's run: before the fix the new instance, pod 1 and pod 2 timed out (pod 1
    arrived again on its session with the old instance, which never released it; the new one
    waited for pod 1, "not connected"). Now pod 1 leaves the old instance when it hears of the
    new one; the old one finds out from its own name that it was replaced, releases nobody
    and is released by nobody."""
    c = Cluster(3, seed=len(cut), mode=mode)
    start(c, starts)
    c.blocked |= cut  # pod 2 cannot reach the old instance: the old one waits for it
    c.run_until(at)
    _member_with_the_old_one(c)
    old = _replace_zero(c, moved=moved)
    c.blocked.clear()
    last = max(at, *starts.values())
    c.run_until(last + FINDS_OUT + LINGER + 1)
    assert_released(c, after=last, by=last + BOUND)
    assert old.alive and old.verdict is None, c.describe()
    # It finds out unless everyone has left first (wait mode, with its rounds over): still
    # looking for pod 2 when DNS moved, its rounds meet the new instance; a sidecar that
    # hears of the release asks its own name before it would join it.
    if mode == "sidecar" or not cut:
        assert old.reach.peers[0].failure.cause is Cause.REPLACED, c.describe()
    assert c.unsafe() == [], c.describe()


def test_the_old_instance_finds_out_with_nobody_to_tell_it() -> None:
    """Everyone reached, nobody probes the old instance's address (DNS no longer lists it):
    its own-name checks find the new instance within a few looks."""
    c = Cluster(3, seed=3)
    start(c, {0: 0.0, 1: 0.0, 2: 0.0})
    c.blocked.add((2, 0))
    c.run_until(2.0)
    old = _replace_zero(c)
    c.run_until(2.0 + FINDS_OUT)
    assert old.reach.peers[0].failure.cause is Cause.REPLACED, c.describe()
    assert not isinstance(old.verdict, Released)
