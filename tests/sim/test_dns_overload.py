"""A cluster DNS that falls behind (issue 22 item 7: no retry storm when the server falls behind).

``bench.cutanswer 300 32 120``: once ~200 waiting agents took both cores, the one-thread DNS stub
read ~40 queries a second and every pod asked every name again every 4-8 s, 75-695 queries a
pod. Rebuilt here: 300 pods on the tree past a cut (degree 18, as the agent picks at 300), every
pod published at 0 and its agent started over 60 s, the server answering 20 queries a second
until 90 s (``tests.sim.dns.Server``: the rest time out), then keeping up.
"""

from __future__ import annotations

import pytest

from agent.core.timing import DEFAULT_TIMING
from tests.sim.checks import BOUND, start
from tests.sim.cluster import Cluster
from tests.sim.dns import Server

pytestmark = pytest.mark.timeout(300)

PEERS, DEGREE, OVER, BEHIND = 300, 18, 60.0, 90.0
#: released this long after the server keeps up again: three of the pace floor's periods (16 s)
RECOVERY = 48.0


def _launched(server: Server) -> Cluster:
    c = Cluster(PEERS, seed=1, mode="wait", cut=32, degree=DEGREE)
    c.tasks.server = server
    for i in range(PEERS):  # the pod, published: its agent comes later
        c._pod(i, f"10.{i // 250}.{i % 250}.1", 0.0)
    start(c, {i: OVER * i / PEERS for i in range(PEERS)}, new_pod=False)
    return c


@pytest.mark.slow  # 5 s of the quick tier's 60: make test runs it
def test_a_server_that_falls_behind_is_asked_less_not_more_and_every_pod_passes() -> None:
    """While the server is behind, a pod asks its targets' names once (``K + 2``: the burst the
    Job starts with, before the first timeout lands), then at most about one query in 8 s for
    its names (the pace's floor, ``dns_rate_floor``, with jitter) and one for the Service's
    rounds (``dns_round_backoff``), with a few more while the rate halves: a bound that grows
    with the time behind at ~1/4 a second, not at the names times the per-name backoff's
    (before: 2.3 a second a pod, 254 queries at the most by 90 s, 395 by 150 s). Once the
    server keeps up every pod is released within a few of the floor's periods. Meanwhile each
    pod says that DNS, not the peers, holds it up (a window of 10 s held too few queries at the
    floor to say so)."""
    server = Server(20.0, 64, DEFAULT_TIMING.dns_answer_wait, until=BEHIND)
    c = _launched(server)
    c.run_until(BEHIND - 1.0)
    # each pod says so: DNS, not the peers, holds it up (the progress line's "DNS is slow")
    slow = [i for i, n in c.current().items() if n.agent.asking.slow is not None]
    assert len(slow) >= PEERS * 9 // 10, sorted(set(range(PEERS)) - set(slow))
    c.run_until(BEHIND + RECOVERY + BOUND)
    excess = {
        i: n - (DEGREE + 2 + 8 + (BEHIND - OVER * i / PEERS) / 4) for i, n in server.asked.items()
    }
    assert max(excess.values()) <= 0, sorted(excess.items(), key=lambda kv: -kv[1])[:5]
    released = {i: n.verdict_at for i, n in c.current().items() if n.verdict_at is not None}
    assert len(released) == PEERS and c.unsafe() == [], c.describe()
