"""``run --exit-barrier --exit-led-by I`` on the in-memory cluster of shipped cores
(tests/sim/modes.py: pod I's exit barrier's hello stops a running workload).

Outside review 10: past a cut Service answer the pods it left out never heard the leader's end,
dense or sparse, and their workloads (``sshd -D``: they never end by themselves) ran on. Pod I's
exit barrier now starts from where each pod said hello to its start barrier
(``agent.core.callers``).
"""

from __future__ import annotations

import pytest

from agent.protocol.wire import EXIT_BARRIER
from tests.sim.checks import start
from tests.sim.cluster import Cluster

pytestmark = pytest.mark.timeout(60)

PEERS, LEADER = 12, 5
#: a workload that does not end by itself, within the run
DAEMON = 10_000.0


@pytest.mark.parametrize("degree", [None, 4], ids=["all", "sparse"])
def test_the_leaders_end_stops_every_workload_past_a_cut_answer(degree: int | None) -> None:
    """12 pods, the Service's answer listing 2; pod 5's workload ends at 1 s, every other one
    would run on: each stops, and every pod passes the exit barrier and exits."""
    c = Cluster(PEERS, seed=3, mode="exit", cut=2, degree=degree)
    c.led_by = LEADER
    c.workloads.update({i: DAEMON for i in range(PEERS)} | {LEADER: 1.0})
    start(c, dict.fromkeys(range(PEERS), 0.0))
    c.run_until(120.0)
    assert c.unsafe() == [], c.describe()
    began = c.current(EXIT_BARRIER)
    assert sorted(began) == list(range(PEERS)), c.describe()  # every workload ended
    assert all(n.exited for n in c.current().values()), c.describe()
