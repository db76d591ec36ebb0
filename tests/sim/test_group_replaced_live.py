"""A group coordinator replaced while its old instance runs on, past a cut Service answer, on
the in-memory cluster of shipped cores (real processes: tests/faults/test_group_replaced_live.py;
the decision, event by event: tests/pure/test_silent_claims.py).

Nine pods on the tree (groups 0-2, 3-5, 6-8), the Service's answer cut. Pod 3 is replaced at a
new address (DNS moves its name) while its old instance stays up with its members' sessions;
pod 8 starts a moment later. The new pod 3's session with the root waits for DNS to vouch for
its address (past a cut, for the chain of reports) while the old one's is counted. Before the
fix the root released everyone with the old pod 3 counted, and the new pod 3 was never released
(its members had gone with the old one's release): these seeds and cuts did so.
"""

from __future__ import annotations

import pytest

from agent.core.effects import Released
from tests.sim.checks import BOUND, LINGER, assert_released, start
from tests.sim.cluster import Cluster

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize(
    "seed, cut, at", [(3, 1, 0.3), (3, 3, 0.3), (3, 3, 1.0), (4, 1, 0.3), (4, 3, 0.3)]
)
def test_a_live_old_group_coordinator_past_a_cut_is_counted_by_nobody(
    seed: int, cut: int, at: float
) -> None:
    """Every pod's current instance, the new pod 3's included, is released within the bound
    after pod 8 starts; the old pod 3 by nobody, and nothing unsafe."""
    c = Cluster(9, degree=4, cut=cut, seed=seed)
    start(c, {i: 0.0 for i in range(8)})
    c.run_until(at)
    old = c.current()[3]
    c.start(3, keep_old=True)  # a new pod, a new address; the old agent runs on
    old.pod.withdrawn_at = c.now  # its records go
    c.answers.withdrawn()
    last = at + 0.3
    start(c, {8: last})
    c.run_until(last + BOUND + LINGER)
    assert_released(c, after=last, by=last + BOUND)
    assert old.alive and not isinstance(old.verdict, Released), c.describe()
