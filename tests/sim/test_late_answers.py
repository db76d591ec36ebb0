"""A cluster DNS that answers late, not never (issue 22: at most 32 queries a pod when DNS is
slow), in the in-memory cluster: the shipped core, the resolver modelled as it waits
(``Timing.dns_answer_wait``, ``tests.sim.tasks``).

The real run it stands for: ``bench.cutanswer 300 32 120``, two cores starved, the one-thread
stub answering late; the pods over 32 were those whose queries timed out, each asked again and
answered as late. Here 120 pods on the tree past a cut (degree 14), published at 0 and started
over 20 s, the server answering 85 queries a second in order, dropping none, until 30 s: the
Job's ~100 a second queue up, answered up to ~5 s late. Before (each answer past 2 s thrown
away): 29.9 queries a pod, 44 at the most, 50 pods over 32; now 19.3, 27, none. A server that
drops queries (a full receive buffer) still costs a query again for each: no answer comes.
"""

from __future__ import annotations

import pytest

from agent.core.timing import DEFAULT_TIMING
from tests.sim.checks import BOUND, start
from tests.sim.cluster import Cluster
from tests.sim.dns import Server

pytestmark = pytest.mark.timeout(300)

PEERS, DEGREE, OVER, BEHIND = 120, 14, 20.0, 30.0
BUDGET = 32
#: released this long after the server keeps up again: three of the pace floor's periods (16 s)
RECOVERY = 48.0


def test_a_server_that_answers_late_costs_no_pod_more_than_32_queries() -> None:
    """Every pod released, safely, each having asked at most 32 queries: an answer later
    than ``dns_timeout`` is used, not asked for again."""
    server = Server(85.0, 1 << 20, DEFAULT_TIMING.dns_answer_wait, until=BEHIND)
    c = Cluster(PEERS, seed=3, mode="wait", cut=32, degree=DEGREE)
    c.tasks.server = server
    for i in range(PEERS):
        c._pod(i, f"10.0.{i}.1", 0.0)
    start(c, {i: OVER * i / PEERS for i in range(PEERS)}, new_pod=False)
    c.run_until(BEHIND + RECOVERY + BOUND)
    released = [i for i, n in c.current().items() if n.verdict_at is not None]
    assert len(released) == PEERS and c.unsafe() == [], c.describe()
    asked = dict(c.asked)
    worst = sorted(asked.items(), key=lambda kv: -kv[1])[:5]
    assert max(asked.values()) <= BUDGET, worst
    assert server.dropped == server.late == 0  # every answer came, within the wait
