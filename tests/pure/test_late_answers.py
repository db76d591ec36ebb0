"""An answer that comes late is used, and still says the server is behind (issue 22: at most 32
DNS queries a pod when its DNS is slow).

The resolver gave a query up at ``Timing.dns_timeout`` (2 s), and the agent asked the name
again: every answer a server that has fallen behind sent late cost its name a second query,
answered as late (pods of 300 real agents on two starved cores: up to 43 queries). Now a
query waits ``Timing.dns_answer_wait``, and an answer later than ``dns_timeout`` reaches the
core marked late (``Resolution.late``, ``Attempted.late``): the name is not asked again, while
the pace slows down and the agent says DNS is slow, as it did for the timeout. On the real pure
Agent, with the small world of ``tests/pure/test_dnspace.py``.
"""

from __future__ import annotations

from collections import Counter

import pytest

from agent.core.answers import NameAttempt
from agent.core.inputs import Attempted, LookedUp, Reached, Resolution
from agent.core.log import LogKind
from agent.core.timing import Timing
from tests.pure.test_dnspace import World, _address, _agent, _me

pytestmark = pytest.mark.timeout(60)

PEERS = 8
#: each answer comes this long after its query: past ``dns_timeout``, within the wait
LATE = 3.0


def _late_world() -> World:
    timing = Timing(dns_rate_max=100.0, dns_rate_min=100.0)
    world = World(_agent(PEERS, PEERS - 1, timing, barrier="none", timeout="0"), PEERS)
    world.take(world.agent.begin(0.0))
    return world


def test_every_name_answered_late_is_asked_once_and_dns_is_said_to_be_slow() -> None:
    """Every query of a peer's name is answered 3 s late: each name is asked once, every
    peer is reached, the pace's rate is down, and the window says DNS is slow."""
    world = _late_world()
    start = world.agent.asking.pace.rate
    while world.out or not world.agent.reach.done:
        assert world.now < 60.0, (world.now, sorted(world.out))
        world.tick(world.now + LATE)
        for name in sorted(world.out):
            world.out.pop(name)
            reached = Reached(name, _me(name, PEERS).instance)
            world.handle(Attempted(name, reached, _address(name), late=True))
    assert Counter(name for _, name in world.asked) == Counter(range(PEERS))
    assert world.agent.asking.pace.rate < start
    lines = world.agent.asking.slow_lines(world.now)
    assert [line.kind for line in lines] == [LogKind.DNS_SLOW], lines


def test_a_late_lookup_holds_its_name_no_longer_but_counts_as_the_server_behind() -> None:
    """A look-up answered late: an answer (its name not held back for a failure), counted in
    the window as one the server did not answer in time."""
    world = _late_world()
    pace = world.agent.asking.pace
    world.agent.asking.looked_up(3, Resolution((_address(3),), late=True), 1.0)
    assert pace.held(3) == float("-inf")
    assert pace.slowness(1.0).failed == 1
    world.handle(LookedUp(4, Resolution((_address(4),))))
    assert pace.slowness(world.now).failed == 1


def test_an_attempt_carries_its_answers_lateness() -> None:
    """``NameAttempt`` (the runner's and the in-memory cluster's judge of an attempt) passes
    the answer's lateness on, reached or not."""
    late = Resolution((_address(2),), late=True)
    attempt = NameAttempt(2, "", late)
    attempt.probed(_address(2), Reached(2, _me(2, PEERS).instance))
    assert attempt.outcome().late
    assert not NameAttempt(2, "", Resolution((_address(2),))).outcome().late
