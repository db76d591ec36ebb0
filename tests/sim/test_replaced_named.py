"""A pod replaced while its clients ask for names: which instance liveness is owed to.

Hypothesis found the schedule (``REPLACED_ASKS_LATE``): pod 0's old pod at 10.0.0.4 terminates
while its replacement at 10.0.0.6 runs (an ``overlap``), and the old pod's client asks for
"ckpt" after the new pod's client did. The checker took the instance *started last* as the
index's latest and demanded its release; but it is the old process's instance (its instance id,
older, is that process's), asked for after pod 0's name already led to the new pod, and it was
gone by the time faults stopped. docs/guarantee.md promises such an old instance of a replaced
pod nothing; the new pod's instance of "ckpt" is the one owed a release, and it was released
(tests/sim/liveness.py, ``latest``).
"""

from __future__ import annotations

import pytest

from agent.core.effects import Released
from agent.protocol.wire import named_barrier
from tests.sim.liveness import latest
from tests.sim.test_barrier_properties import REPLACED_ASKS_LATE, check_liveness, simulate

pytestmark = pytest.mark.timeout(60)


def test_a_replaced_pods_late_ask_is_not_its_indexs_latest_instance() -> None:
    c, faults_end = simulate(REPLACED_ASKS_LATE)
    assert c.unsafe() == [], c.describe()
    ckpt = named_barrier("ckpt")
    new, old = (n for n in c.nodes if n.me.index == 0 and n.me.barrier == ckpt)  # as started
    # the old pod's client asked later, while pod 0's name already led to the new pod ...
    assert old.started_at > new.started_at and old.me.instance < new.me.instance
    assert new.pod.published_at <= old.started_at < old.pod.withdrawn_at, c.describe()
    # ... and the old pod was gone when faults stopped: nothing could release it after that
    gone = old.truth.processes[old.me.instance].gone
    assert old.state == "gone" and gone is not None and old.truth.at(gone) <= faults_end
    assert old.verdict is None and c.current(ckpt)[0] is old  # the instance started last
    # the new pod's instance is the index's latest, and it was released
    assert latest(c, ckpt)[0] is new and isinstance(new.verdict, Released), c.describe()
    check_liveness(c, faults_end, REPLACED_ASKS_LATE)
