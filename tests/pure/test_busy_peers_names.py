"""A peer too busy to answer a probe in time costs no more DNS queries than one that refuses.

A connect or hello that timed out at every address its name gave asked DNS for that name again
at each retry (a refusal reuses the addresses: ``agent.core.refused``), one query a name every
few seconds for as long as the peer stayed busy: a member of a 300-pod Job whose targets were
all busy asked 141 in 20 s and 1,067 in 200 s, against ``K + 7`` = 25 (``docs/at-scale.md``).
Driven through the pure Agent on a hand-held clock, as ``test_one_query_a_name``; each attempt
goes through the shipped ``NameAttempt``, as the shell's and the simulator's do.
"""

from __future__ import annotations

import collections
import heapq
import itertools

import pytest

from agent.core.answers import NameAttempt
from agent.core.causes import Cause, Failure
from agent.core.effects import Attempt, Effect, Lookup, Sweep
from agent.core.graph import default_degree
from agent.core.inputs import Attempted, Input, LookedUp, Reached, Resolution, Swept, Unreached
from agent.core.refused import RefusedAnswers
from agent.core.timing import DEFAULT_TIMING
from agent.protocol.instance import instance_id
from tests.pure.test_one_query_a_name import DNS_TIME, PEERS, _address, _agent

pytestmark = pytest.mark.timeout(30)

K = default_degree(PEERS)
#: what a member asks at most past a cut, fault-free, while DNS answers (docs/at-scale.md)
BOUND = K + 7

FAILURES = {
    "refused": (Failure("connect to port 29300: refused", Cause.CONNECT_REFUSED), 0.01),
    "connect timed out": (Failure("connect to port 29300 timed out", Cause.CONNECT_TIMEOUT), 3.0),
    "hello late": (Failure("hello failed: late", Cause.HELLO_FAILED), 5.0),
}


def _answer(effect: Effect, me: int, now: float, busy: str, until: float) -> tuple[Input, float]:
    """What ``effect`` comes to, and how long it takes: the peers ``busy`` until ``until``."""
    match effect:
        case Sweep():
            listed = tuple(_address(i) for i in range(32))
            return Swept(Resolution(listed, truncated=True)), DNS_TIME
        case Lookup(index=index):
            return LookedUp(index, Resolution((_address(index),))), DNS_TIME
        case Attempt(index=index, addresses=addresses):
            at = addresses or (_address(index),)
            if now >= until or index == me:
                reached = Reached(index, instance_id(1, index))
                return Attempted(index, reached, address=at[0], addresses=at), DNS_TIME
            failure, took = FAILURES[busy]
            attempt = NameAttempt(index, "", Resolution(at))
            for address in at:
                attempt.probed(address, Unreached(failure))
            return attempt.outcome(), took
    raise AssertionError(effect)


def _queries(me: int, busy: str, until: float) -> collections.Counter[object]:
    """The names pod ``me`` asks DNS for, its targets busy until ``until``, then up."""
    agent, asked, order = _agent(me), collections.Counter[object](), itertools.count()
    due: list[tuple[float, int, Input]] = []
    now, effects = 0.0, agent.begin(0.0)
    while now <= until + 60.0:
        for effect in effects:
            if isinstance(effect, Sweep):
                asked["service"] += 1
            elif isinstance(effect, Lookup | Attempt) and not getattr(effect, "addresses", ()):
                asked[effect.index] += 1
            if isinstance(effect, Sweep | Lookup | Attempt):
                answer, took = _answer(effect, me, now, busy, until)
                heapq.heappush(due, (now + took, next(order), answer))
        wake = agent.next_wakeup()
        if due and due[0][0] <= wake:
            now, _, answer = heapq.heappop(due)
            effects = agent.handle(answer, now)
        else:
            now, effects = wake, agent.poll(wake)
    return asked


@pytest.mark.parametrize("until", [20.0, 200.0])
@pytest.mark.parametrize("busy", sorted(FAILURES))
def test_a_member_asks_a_bounded_number_of_queries_however_long_its_peers_are_busy(
    busy: str, until: float
) -> None:
    """Member 248 of 300 (``K`` = 18): every target refuses, or lets the connect or the hello
    time out, for 20 s or 200 s, then answers. Each row asks at most ``K + 7``, whatever how
    long; before, the rows that time out asked 96 to 1,067 (each name 5 to 59 times)."""
    asked = _queries(248, busy, until)
    assert sum(asked.values()) <= BOUND, asked
    assert max(asked.values()) <= 2, asked


@pytest.mark.parametrize(
    ("started_after_hello", "busy", "asks_dns"),
    [
        (False, False, False),  # refused, out before the hello: its agent was not up then
        (False, True, False),  # timed out, out before the hello
        (True, True, False),  # timed out after the hello: there, busy
        (True, False, True),  # refused after the hello: its agent is elsewhere now
    ],
)
def test_what_lands_after_a_peers_hello_from_where_it_refused(
    started_after_hello: bool, busy: bool, asks_dns: bool
) -> None:
    """Peer 7's addresses refused; it says hello from one of them (its agent is up). The attempt
    that lands next asks DNS again only if it started after the hello and was refused there.
    Before, one out when the hello came and refused (the agent not up when it connected) asked
    the name again: a member of 150 pods launched over 130 s asked 26 (``K + 7`` = 25)."""
    refusing, at = RefusedAnswers.of(DEFAULT_TIMING), ("10.0.0.8",)
    refusing.tried(7, at, 0.0)
    if started_after_hello:
        refusing.heard(7, at[0])
        assert refusing.addresses(7, 1.0) == at  # the try after the hello: no query
    else:
        assert refusing.addresses(7, 1.0) == at  # out before the hello
        refusing.heard(7, at[0])
    refusing.tried(7, at, 1.0, busy=busy)
    assert (refusing.addresses(7, 1.1) == ()) is asks_dns
