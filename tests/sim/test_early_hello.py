"""A peer replaced at a new address says hello before this pod has reached its index: the two
schedules the checker found (tests/sim/safety.py, truth.py), on the in-memory cluster.

The new instance's hello comes from an address DNS does not list yet, so it is only a
sighting; this pod then reaches the old instance, still answering at the address DNS lists,
and the new one never says hello here again. Before the fix the sighting was dropped (they were
kept only for indices already reached): this pod's view named the old instance for ever, its
arrival never matched the coordinator's, and nobody was released. Now the sighting waits for
the index to be reached, and is checked once it is reached elsewhere (``agent.core.admission``).
"""

from __future__ import annotations

import pytest

from tests.sim.test_barrier_properties import Fault, Schedule, check_liveness, simulate

pytestmark = pytest.mark.timeout(60)

_SAME_POD = Fault("restart", 0.0, 0, 0, 0.0, False, False)  # index 0 restarted at once

#: wait mode, with message drops: pod 1 restarts in its pod at once, index 0 twice, an outsider
#: claims index 1, and pod 3 is replaced by a new pod (new address) at 1.98
WAIT = Schedule(
    n=4,
    mode="wait",
    seed=469,
    starts=(0.971, 0.504, 0.023, 0.246),
    faults=(
        Fault("restart", 0.001, 1, 1, 0.0, False, False),
        _SAME_POD,
        _SAME_POD,
        Fault("restart", 1.98, 3, 3, 0.03, False, True),
        Fault("outsider", 0.068, 1, 1, 0.0, False, False),
    ),
    drop=0.02,
    delay=0.2,
    dns_delay=0.5,
)

#: sidecar mode, no drops: pod 1's replacement starts at 0.215 at a new address while the old
#: pod runs on until 0.597; pod 2 hears the new one's probe at 0.596, then reaches the old one
SIDECAR = Schedule(
    n=3,
    mode="sidecar",
    seed=1,
    starts=(0.0, 0.0, 0.0),
    faults=(_SAME_POD, Fault("overlap", 0.215, 1, 1, 0.382, False, False)),
    drop=0.0,
    delay=0.001,
    dns_delay=0.5,
)


@pytest.mark.parametrize("schedule", [WAIT, SIDECAR], ids=["wait", "sidecar"])
def test_a_replacements_early_hello_is_not_lost(schedule: Schedule) -> None:
    """Every index's newest instance is released, safely, within the liveness bound."""
    c, faults_end = simulate(schedule)
    assert c.unsafe() == [], c.describe()
    check_liveness(c, faults_end, schedule)
