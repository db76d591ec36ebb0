"""Behaviour the barrier depends on that once lived in the runner, and the duplicate-index-0
case, shown on the in-memory cluster of shipped cores."""

from __future__ import annotations

import pytest

from agent.protocol.wire import Arrive, Message, Release
from tests.sim.checks import BOUND, LINGER, assert_aborted, assert_released, once, start
from tests.sim.cluster import CONNECT_TIMEOUT, Cluster, Fate

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize("kind, to", [(Arrive, 0), (Release, 2)], ids=["arrive", "release"])
def test_a_failed_send_closes_the_session(kind: type[Message], to: int) -> None:
    """A send that does not go out (Timing.send_timeout) drops its session (``Sessions._write``), so
    the message lost that way is sent again over the next session instead of never."""
    c = Cluster(3)
    start(c, {0: 0.0, 1: 0.0, 2: 0.5})
    c.on_send = once(kind, Fate.SILENT, receiver=to)
    c.run_until(0.5 + LINGER + BOUND + 5)
    assert_released(c, after=0.5, by=0.5 + BOUND)


@pytest.mark.parametrize("order, odd", [((1, 2, 0), 2), ((2, 1, 0), 1)], ids=["120-2", "210-1"])
def test_an_aborted_member_lingers(order: tuple[int, ...], odd: int) -> None:
    """Pod ``odd`` says 4 peers, the others 3. It starts second, probes the first member and
    aborts; index 0 starts after both. The odd one keeps answering (Timing.abort_linger) so that
    index 0 still meets it and everyone exits 4, not 3 at the timeout."""
    c = Cluster(3, seed=odd)
    for k, index in enumerate(order):
        start(c, {index: 0.5 * k}, **({"peers": 4} if index == odd else {}))
    c.run_until(1.0 + BOUND + LINGER)
    assert_aborted(c, "peer count")


def _two_live_coordinators(mode: str) -> tuple[Cluster, float]:
    """The old pod of index 0 keeps running (its node cut off from the API server) while its
    replacement starts, and the old one completes the barrier before it ends. The new one had
    reached everyone before anyone was released, and released members never dial it again."""
    c = Cluster(3, seed=1, mode=mode)
    start(c, {0: 0.0, 1: 0.0, 2: 0.0})
    c.blocked.add((2, 1))
    c.run_until(1.0)
    old = c.current()[0]
    c.start(0, keep_old=True)
    c.at(3.0, c.blocked.clear)
    c.at(3.0 + CONNECT_TIMEOUT + BOUND, lambda: c.kill(old))
    c.run_until(40.0)
    return c, 3.0 + CONNECT_TIMEOUT + BOUND


@pytest.mark.parametrize("mode", ["wait", "sidecar"])
def test_two_live_coordinators(mode: str) -> None:
    """A member reaches one instance of index 0 at a time (a hello from the other makes it
    reach that one again), and a coordinator's own name counts only when its own instance
    answers: so members follow the instance that keeps answering, and the views agree once the
    old pod is gone. A coordinator waiting with everyone reached also probes the members not
    arrived (``agent.core.lookaround``), so in sidecar mode it hears their released flag
    even when the old coordinator released them first."""
    c, settled = _two_live_coordinators(mode)
    assert_released(c, after=3.0, by=settled + 2 * 16.0)
