"""A member replaced at a new address, with a probe that says no hello: its session is held
until DNS vouches for the address, and the check of its name may be put back behind an attempt
of the same name (the DNS pace: one query a name in flight, ``agent.core.asking``).

Found by the property test in CI (sidecar, ``--probe tcp:8080``): pod 4 was replaced at 2.1 s,
its new session held at pod 0. Each check of its name fell due while a look-around's attempt of
that name was out (at 3.5, 5.5, 9.5 and 17.5 s: the two timers double in step), so each was put
back, and the attempt's answer, which listed the new address, vouched for nothing: the
coordinator had reached index 4 before, at its old address. Every pod was released at 26 s, not
within the property's bound of 18.6 s. Now an attempt's answer is the name's answer to the
admission check as well.
"""

from __future__ import annotations

import pytest

from tests.sim.test_barrier_properties import Fault, Schedule, check_liveness, simulate

pytestmark = pytest.mark.timeout(60)

REPLACED = Schedule(
    n=5,
    mode="sidecar",
    seed=24921,
    starts=(0.923, 0.001, 0.028, 0.0, 0.0),
    faults=(
        *[Fault("restart", 0.0, 0, 0, 0.0, False, False)] * 3,
        Fault("restart", 0.512, 4, 0, 1.626, False, True),
        Fault("outsider", 0.25, 0, 0, 0.0, False, False),
    ),
    drop=0.0,
    delay=0.2,
    dns_delay=0.0,
    probe="tcp:8080",
    views=((0.0, 1.0, 0.0), (0.0, 0.0, 0.0), (0.0, 0.0, 0.0), (1.5, 0.0, 0.0), (0.0, 0.0, 0.0)),
)


def test_an_attempts_answer_vouches_for_a_replaced_members_held_session() -> None:
    c, faults_end = simulate(REPLACED)
    assert c.unsafe() == [], c.describe()
    check_liveness(c, faults_end, REPLACED)
    released = [n.verdict_at for n in c.current().values()]
    # the look-around's first attempt of pod 4 (3.5 s) answers with its new address
    assert all(at is not None and at < 5.0 for at in released), c.describe()
