"""Names that keep refusing are asked again in total, not each on its own clock.

``bench.cutanswer 300 32 300`` (300 real agents launched over minutes, every pod published from
the start) asked 445 queries a pod: each pod's targets refused until their agents came up, and
every one of their names was asked again at the end of its own reuse window (5, 10, 20, 30 s,
then every 30 s), ~7 times over 150 s. A peer that refuses says hello once its agent is up
(it targets this pod too), which asks its name at once; so past their windows the names that
keep refusing are asked one at a time on the pod's own doubling gap. Driven through the pure
Agent on a hand-held clock.
"""

from __future__ import annotations

import collections

import pytest

from agent.config.parse import build_config
from agent.core.agent import Agent
from agent.core.causes import Cause, Failure
from agent.core.effects import Attempt
from agent.core.inputs import Attempted, Contacted, Reached, Unreached
from agent.core.timing import DEFAULT_TIMING
from agent.protocol.wire import Hello, Identity, Role
from agent.topology.podfiles import PodFacts

pytestmark = pytest.mark.timeout(20)

REFUSED = Unreached(Failure("connect to port 29300: refused", Cause.CONNECT_REFUSED))


def _agent(peers: int) -> Agent:
    """Pod 0 asking every peer by name (``--probe tcp:PORT``)."""
    config = build_config(
        "wait",
        {"peers": str(peers), "index": "0", "service": "svc", "namespace": "ns", "timeout": "0",
         "probe": "tcp:8080"},
        PodFacts(hostname="job-0"),
    )  # fmt: skip
    me = Identity("job", "", 0, peers, 29300, "0" * 16)
    return Agent(config, me=me, now=0.0, rand=lambda: 0.5)


def _queries(peers: int, until: float) -> collections.Counter[int]:
    """Pod 0 asking every peer by name, every other peer's address refusing until ``until``:
    DNS queries by name, per peer."""
    agent = _agent(peers)
    asked: collections.Counter[int] = collections.Counter()
    now, effects = 0.0, agent.begin(0.0)
    while now < until:
        for attempt in [e for e in effects if isinstance(e, Attempt) and e.index != 0]:
            asked[attempt.index] += not attempt.addresses
            at = (f"10.0.0.{attempt.index}",)
            effects += agent.handle(Attempted(attempt.index, REFUSED, refused_at=at), now)
            effects.remove(attempt)
        now = agent.next_wakeup()
        effects = agent.poll(now)
    return asked


def test_names_that_keep_refusing_are_asked_again_a_few_times_in_all() -> None:
    """20 peers refusing for 150 s: each name asked once, and then a few of them again in all
    (the pod's gap doubling from 5 s: 5, 15, 35, 75 and 155 s), not each ~7 times (140)."""
    asked = _queries(21, 150.0)
    assert set(asked) == set(range(1, 21)) and min(asked.values()) >= 1
    assert DEFAULT_TIMING.refused_reuse == 5.0
    assert sum(asked.values()) <= 20 + 5, sorted(asked.items())


def test_one_name_that_keeps_refusing_is_asked_at_its_windows_then_at_the_pods_gap() -> None:
    """Alone, a name is asked at the end of each of its windows at first (5, 10, 20, 30 s), as
    before; past them at the pod's gap, which has grown to 40 s by then: at 0, 5, 15, 35 and
    65 s, then at 105 s, not 95 s."""
    assert _queries(2, 100.0)[1] == 5
    assert _queries(2, 106.0)[1] == 6


def _hello(index: int, address: str) -> Contacted:
    return Contacted(
        Hello(Identity("job", "", index, 3, 29300, "2" * 16), Role.MEMBER, "n"), address
    )


def test_a_hello_from_where_the_peer_refused_is_tried_there_without_asking_dns() -> None:
    """A late peer's hello from the address DNS gave it (and that refused until its agent was
    up) is where it is: the attempt its hello brings tries there, no query (the in-memory
    cluster at 300 pods: a query a late target, up to 20 a pod). Refused there once more, it
    is elsewhere: the next attempt asks DNS."""
    for again in (Reached(2, "2" * 16), REFUSED):
        agent = _agent(3)
        agent.begin(0.0)
        agent.handle(Attempted(2, REFUSED, refused_at=("10.0.0.3",)), 0.1)
        agent.handle(_hello(2, "10.0.0.3"), 40.0)
        assert _attempt_of(agent, 2, 40.0).addresses == ("10.0.0.3",)
        refused = ("10.0.0.3",) if again is REFUSED else ()
        agent.handle(Attempted(2, again, refused_at=refused), 40.1)
        if again is REFUSED:
            assert _attempt_of(agent, 2, 42.0).addresses == ()


def _attempt_of(agent: Agent, index: int, now: float) -> Attempt:
    [attempt] = [a for a in agent.poll(now) if isinstance(a, Attempt) and a.index == index]
    return attempt
