"""Runner behaviour the barrier depends on, shown on the sim: each test runs with the behaviour
(:class:`~tests.sim.node.RunnerModel`'s defaults are agent/runner.py as it is) and without it
(a strict xfail). The last one is a change not made yet (``runner-today``).
"""

from __future__ import annotations

import pytest

from agent.wire import Arrive, Message, Release
from tests.sim.checks import BOUND, LINGER, assert_aborted, assert_released, once, start
from tests.sim.cluster import CONNECT_TIMEOUT, Cluster, Fate, RunnerModel

pytestmark = pytest.mark.timeout(60)


def today(reason: str, *values: object) -> object:
    """The runner as it is: the test fails (strict xfail) until the runner changes."""
    return pytest.param(
        *values,
        RunnerModel(),
        marks=pytest.mark.xfail(strict=True, reason=reason),
        id="runner-today",
    )


@pytest.mark.parametrize("kind, to", [(Arrive, 0), (Release, 2)], ids=["arrive", "release"])
@pytest.mark.parametrize(
    "runner",
    [
        pytest.param(
            RunnerModel(close_on_send_failure=False),
            marks=pytest.mark.xfail(strict=True, reason="the message would never be sent again"),
            id="send-failure-ignored",
        ),
        pytest.param(RunnerModel(), id="runner-closes-on-send-failure"),
    ],
)
def test_a_failed_send_must_close_the_session(
    kind: type[Message], to: int, runner: RunnerModel
) -> None:
    """``Loop.act`` swallows a send that failed or timed out (SEND_TIMEOUT) and keeps the
    session: an Arrive or a Release lost that way is never sent again and nobody is released.
    Closing the channel makes it a lost session, which the cores already recover from."""
    c = Cluster(3, runner=runner)
    start(c, {0: 0.0, 1: 0.0, 2: 0.5})
    c.on_send = once(kind, Fate.SILENT, receiver=to)
    c.run_until(0.5 + LINGER + BOUND + 5)
    assert_released(c, after=0.5, by=0.5 + BOUND)


@pytest.mark.parametrize(
    "runner",
    [
        pytest.param(
            RunnerModel(abort_linger=0.0),
            marks=pytest.mark.xfail(strict=True, reason="index 0 never hears of the disagreement"),
            id="aborted-member-exits-at-once",
        ),
        pytest.param(RunnerModel(), id="runner-aborted-member-lingers"),
    ],
)
@pytest.mark.parametrize("order, odd", [((1, 2, 0), 2), ((2, 1, 0), 1)], ids=["120-2", "210-1"])
def test_an_aborted_member_must_linger(
    order: tuple[int, ...], odd: int, runner: RunnerModel
) -> None:
    """Pod ``odd`` says 4 peers, the others 3. It starts second, probes the first member, aborts
    and exits at once; the first member (which agrees with index 0) was never told, and index 0
    starts after both and finds nobody who disagrees: two pods wait for their timeout (exit 3)
    instead of exit 4. A member that aborts should keep answering probes for the linger bound."""
    c = Cluster(3, seed=odd, runner=runner)
    for k, index in enumerate(order):
        start(c, {index: 0.5 * k}, **({"peers": 4} if index == odd else {}))
    c.run_until(1.0 + BOUND + LINGER)
    assert_aborted(c, "peer count")


ASKS_AGAIN = RunnerModel(reprobe_waiting=1.0)
NOBODY_LEFT = "wait mode: the members it would ask have released and left"


@pytest.mark.parametrize(
    "mode, runner",
    [
        today("its Reach is done, it never asks again; released members never dial", "sidecar"),
        pytest.param("sidecar", ASKS_AGAIN, id="sidecar-coordinator-asks-again"),
        pytest.param(
            "wait",
            ASKS_AGAIN,
            marks=pytest.mark.xfail(strict=True, reason=NOBODY_LEFT),
            id="wait-coordinator-asks-again",
        ),
    ],
)
def test_two_live_coordinators(mode: str, runner: RunnerModel) -> None:
    """The old pod of index 0 keeps running (its node cut off from the API server) while its
    replacement starts, and the old one completes the barrier before it ends. The new one had
    reached everyone before anyone was released, so its sweep has stopped, and released members
    never dial index 0 again: it waits for ever. A coordinator waiting with its Reach done should
    probe the members not connected to it now and then, and heed their released flag."""
    c = Cluster(3, seed=1, mode=mode, runner=runner)
    start(c, {0: 0.0, 1: 0.0, 2: 0.0})
    c.blocked.add((2, 1))
    c.run_until(1.0)
    old = c.current()[0]
    c.start(0, keep_old=True)
    c.at(3.0, c.blocked.clear)
    c.at(3.0 + CONNECT_TIMEOUT + BOUND, lambda: c.kill(old))
    c.run_until(30.0)
    assert_released(c, after=3.0, by=3.0 + CONNECT_TIMEOUT + BOUND + runner.reprobe_waiting)
