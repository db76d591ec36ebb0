"""The DNS pace's guarantees, on the real pure Agent (issue 22 item 7): never two queries out for
one name; never more queries than the token bucket allows; a server that answers nothing is
asked at most what the per-name backoff allows, however often peers say hello; and the agent
says when DNS, not the peers, is what it waits for.

A small world drives the Agent on a hand-held clock: it performs no I/O, only answers each DNS
query it is handed (an attempt that asks DNS, an admission check, a member's dial) as a drawn
script says, and feeds in hellos from peers, which hurry their attempts (``Reach.nudge``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.config.parse import build_config
from agent.core.agent import Agent
from agent.core.backoff import Backoff
from agent.core.causes import Cause, Failure
from agent.core.effects import Attempt, Dial, Effect, Fail, Lookup, Report
from agent.core.inputs import (
    Attempted,
    Contacted,
    DialFailed,
    Input,
    LookedUp,
    Opened,
    Reached,
    Resolution,
    Unreached,
)
from agent.core.log import LogKind, LogLevel
from agent.core.timing import Timing
from agent.errors import BarrierTimeout
from agent.protocol.instance import instance_id
from agent.protocol.wire import Hello, Identity, Role
from agent.topology.podfiles import PodFacts
from tests.support.budget import budget

pytestmark = pytest.mark.timeout(60)

TIMEOUT = Failure("DNS timeout", Cause.DNS_FAILED)
SERVFAIL = Failure("SERVFAIL", Cause.DNS_FAILED)
NXDOMAIN = Failure("NXDOMAIN", Cause.NXDOMAIN)
REFUSED = Failure("connect to port 29300: refused", Cause.CONNECT_REFUSED)
#: what a query may come to: the server failed it, or answered (no such name, an address that
#: refuses, the peer)
OUTCOMES = ("timeout", "servfail", "nxdomain", "refused", "reached")


def _me(index: int, peers: int) -> Identity:
    return Identity("job", "", index, peers, 29300, instance_id(1, index))


def _address(index: int) -> str:
    return f"10.0.0.{index + 1}"


def _agent(peers: int, index: int, timing: Timing, probe: str = "icmp", **values: str) -> Agent:
    config = build_config(
        "wait",
        {
            "peers": str(peers),
            "index": str(index),
            "service": "svc",
            "namespace": "ns",
            "probe": probe,
            **values,
        },
        PodFacts(hostname=f"job-{index}"),
    )
    return Agent(config, me=_me(index, peers), now=0.0, rand=lambda: 0.5, timing=timing)


@dataclass
class World:
    """The agent, the DNS queries out (name -> the effect), and every query's time."""

    agent: Agent
    peers: int
    now: float = 0.0
    out: dict[int, Attempt | Lookup | Dial] = field(default_factory=dict)
    probing: list[Attempt] = field(default_factory=list)  # attempts that reuse addresses
    asked: list[tuple[float, int]] = field(default_factory=list)
    queries: list[Attempt | Lookup | Dial] = field(default_factory=list)
    lines: list[Report] = field(default_factory=list)
    failed: Fail | None = None

    def take(self, effects: list[Effect]) -> None:
        for effect in effects:
            name = _query_name(effect)
            if name is not None:
                assert name not in self.out, f"two queries out for name {name} at {self.now}"
                assert isinstance(effect, Attempt | Lookup | Dial)
                self.out[name] = effect
                self.asked.append((self.now, name))
                self.queries.append(effect)
            elif isinstance(effect, Attempt):
                self.probing.append(effect)
            elif isinstance(effect, Report):
                self.lines.append(effect)
            elif isinstance(effect, Fail):
                self.failed = effect

    def handle(self, event: Input) -> None:
        self.take(self.agent.handle(event, self.now))

    def tick(self, to: float) -> None:
        """The clock moves on to ``to`` (or the agent's next wake-up, if sooner). Polls that
        do nothing and ask to be woken again at once may come a few in a row (each puts back
        what the pace does not allow), never without end: the runner would spin."""
        idle = 0
        while True:
            self.now = max(self.now, min(to, self.agent.next_wakeup()))
            effects = self.agent.poll(self.now)
            self.take(effects)
            if effects or self.agent.next_wakeup() > self.now:
                return
            idle += 1
            assert idle <= 2 * self.peers + 5, f"the agent spins at {self.now}"

    def land(self, name: int, outcome: str) -> None:
        effect = self.out.pop(name)
        failure = {"timeout": TIMEOUT, "servfail": SERVFAIL, "nxdomain": NXDOMAIN}.get(outcome)
        server_failed = outcome in ("timeout", "servfail")
        if isinstance(effect, Attempt):
            if outcome == "reached":
                me = _me(name, self.peers)
                self.handle(Attempted(name, Reached(name, me.instance), _address(name)))
            else:
                refused = (_address(name),) if outcome == "refused" else ()
                self.handle(Attempted(name, Unreached(failure or REFUSED), refused_at=refused))
        elif isinstance(effect, Lookup):
            answer = Resolution(failure=failure) if failure else Resolution((_address(name),))
            self.handle(LookedUp(name, answer))
        else:
            self.handle(DialFailed(outcome, server_failed=server_failed))

    def land_probes(self) -> None:
        """Attempts at addresses that refused a moment ago (no DNS): refused again."""
        probing, self.probing = self.probing, []
        for effect in probing:
            refused = effect.addresses
            self.handle(Attempted(effect.index, Unreached(REFUSED), refused_at=refused))

    def hello(self, index: int) -> None:
        hello = Hello(_me(index, self.peers), Role.MEMBER, "n")
        self.handle(Contacted(hello, _address(index)))


def _query_name(effect: Effect) -> int | None:
    """The name a DNS query is asked for, if ``effect`` asks one."""
    if isinstance(effect, Attempt | Dial) and effect.addresses:
        return None
    if isinstance(effect, Attempt | Lookup):
        return effect.index
    return 0 if isinstance(effect, Dial) else None


# --- the script a world runs --------------------------------------------------------------------
STEP = st.one_of(
    st.tuples(st.just("wait"), st.floats(0.0, 3.0)),
    st.tuples(st.just("land"), st.integers(0, 63), st.sampled_from(OUTCOMES)),
    st.tuples(st.just("hello"), st.integers(0, 63)),
)


def _run(world: World, script: list[tuple[object, ...]]) -> None:
    world.take(world.agent.begin(0.0))
    for step in script:
        match step:
            case ("wait", float(seconds)):
                world.land_probes()
                world.tick(world.now + seconds)
            case ("land", int(k), str(outcome)) if world.out:
                world.land(sorted(world.out)[k % len(world.out)], outcome)
            case ("hello", int(j)):
                world.hello(j % world.peers)


@settings(max_examples=budget(2), deadline=None)
@given(
    peers=st.integers(2, 24),
    rate=st.floats(1.0, 20.0),
    barrier=st.sampled_from(["all", "none"]),
    script=st.lists(STEP, max_size=120),
)
def test_never_two_queries_for_one_name_and_never_more_than_the_bucket(
    peers: int, rate: float, barrier: str, script: list[tuple[object, ...]]
) -> None:
    """Whatever DNS answers and whoever says hello when: one query out per name at a time
    (``World.take`` asserts it at every query), and over any stretch of time at most a
    second's worth at the highest rate (the bucket's size) plus that rate times its length."""
    timing = Timing(dns_rate_max=rate, dns_rate_min=min(rate, 2.0))
    world = World(_agent(peers, peers - 1, timing, barrier=barrier, timeout="0"), peers)
    _run(world, script)
    times = [t for t, _ in world.asked]
    burst = most = timing.dns_rate_max
    for i, start in enumerate(times):
        for j in range(i, len(times)):
            assert j - i + 1 <= burst + most * (times[j] - start) + 1e-9, (i, j, times)


def _most_queries(backoff: Backoff, timeout: float, length: float) -> int:
    """How many queries one name can cost in ``length`` seconds when each times out after
    ``timeout`` and the name is then held the least the backoff's equal jitter allows."""
    n, at = 1, 0.0
    while True:
        at += timeout + backoff.ceiling(n) / 2
        if at > length:
            return n
        n += 1


@settings(max_examples=budget(1), deadline=None)
@given(
    peers=st.integers(2, 12),
    hellos=st.lists(st.tuples(st.floats(0.0, 60.0), st.integers(0, 63)), max_size=80),
)
def test_a_server_that_answers_nothing_gets_at_most_the_backoffs_queries(
    peers: int, hellos: list[tuple[float, int]]
) -> None:
    """Every query times out (``Timing.dns_timeout`` after it went out), while peers say hello
    at any time (each hello hurries that peer's next attempt): for a minute, each name is
    asked at most what the per-name backoff allows, counting the attempts, the admission
    checks of the contacts and the dial alike."""
    timing, length = Timing(), 60.0
    world = _timing_out(peers, timing, length, hellos)
    most = _most_queries(timing.dns_backoff, timing.dns_timeout, length)
    for name in range(peers):
        asked = sum(n == name for _, n in world.asked)
        assert asked <= most, (name, asked, most)


def test_a_server_that_answers_nothing_is_asked_less_and_less_in_all() -> None:
    """Every query times out for five minutes, 24 peers: the pod's rate halves with each
    timeout down to ``dns_rate_floor``, so after the first burst (the bucket's second's
    worth, at most the 24 names out at once) it asks about one query in 8-16 s in all, not
    each name every 4-8 s (before: 667 queries, 2.2 a second)."""
    timing, length = Timing(), 300.0
    world = _timing_out(24, timing, length, [])
    late = [t for t, _ in world.asked if t >= 2 * timing.dns_timeout]
    assert len(world.asked) - len(late) <= 24
    assert len(late) <= length * timing.dns_rate_floor * 2, len(late)


def _timing_out(
    peers: int, timing: Timing, length: float, hellos: list[tuple[float, int]]
) -> World:
    world = World(_agent(peers, peers - 1, timing, timeout="0"), peers)
    world.take(world.agent.begin(0.0))
    sent = dict[int, float]()
    pending = sorted(hellos)
    while world.now < length:
        for name in world.out:
            sent.setdefault(name, world.now)
        due = [(at + timing.dns_timeout, name) for name, at in sent.items()]
        next_hello = pending[0][0] if pending else math.inf
        to = min([length, next_hello, *(at for at, _ in due)])
        world.tick(to)
        for at, name in due:
            if at <= world.now and name in world.out:
                del sent[name]
                world.land(name, "timeout")
        while pending and pending[0][0] <= world.now:
            world.hello(pending.pop(0)[1] % peers)
    return world


# --- what the agent says -------------------------------------------------------------------------
def _slow_lines(world: World) -> list[Report]:
    return [r for r in world.lines if r.line.kind is LogKind.DNS_SLOW]


def _answer_every_query(world: World, outcome: str, until: float) -> None:
    while world.now < until and world.failed is None:
        for name in sorted(world.out):
            world.land(name, outcome)
        world.tick(world.now + 0.5)


def test_dns_that_times_out_is_named_as_the_bottleneck_then_warned_of_then_hinted() -> None:
    """Every query times out: the agent says DNS is slow (info at first: a burst while a Job
    starts is normal), as a warning once it has lasted, and the timeout's message says DNS,
    not the peers, held the barrier up."""
    timing = Timing()
    world = World(_agent(8, 7, timing, timeout="40s"), 8)
    world.take(world.agent.begin(0.0))
    _answer_every_query(world, "timeout", 41.0)
    lines = _slow_lines(world)
    assert lines, [r.line.message for r in world.lines]
    assert lines[0].line.level is LogLevel.INFO
    assert lines[-1].line.level is LogLevel.WARNING
    assert "got no answer in time (DNS timeout, SERVFAIL, a late answer)" in lines[0].line.message
    assert "pacing queries by name to" in lines[0].line.message
    assert world.failed is not None and isinstance(world.failed.error, BarrierTimeout)
    assert "cluster DNS, not the peers, is the bottleneck" in world.failed.error.hints[0]


def test_names_not_published_yet_are_not_called_slow_dns() -> None:
    """NXDOMAIN is an answer (the pods are not published): no DNS-slow line, no such hint."""
    world = World(_agent(8, 7, Timing(), timeout="20s"), 8)
    world.take(world.agent.begin(0.0))
    _answer_every_query(world, "nxdomain", 21.0)
    assert _slow_lines(world) == []
    assert world.failed is not None and isinstance(world.failed.error, BarrierTimeout)
    assert not any("bottleneck" in h for h in world.failed.error.hints)


def test_a_peer_attempted_by_name_costs_no_admission_check_of_its_own() -> None:
    """The coordinator, attempting every peer by name (their names not published yet), holds
    each member's session from an address DNS has not vouched for: the attempts ask, and no
    admission check asks the same names again (an attempt that reaches a member vouches for
    its session)."""
    world = World(_agent(6, 0, Timing(), timeout="0"), 6)
    world.take(world.agent.begin(0.0))
    for j in range(1, 6):
        hello = Hello(_me(j, 6), Role.MEMBER, "n")
        world.handle(Contacted(hello, _address(j)))
        world.handle(Opened(j, hello, False, _address(j)))
        assert world.agent.is_holding(j)
    while world.now < 10.0:
        for name in sorted(world.out):
            world.land(name, "nxdomain")
        world.tick(world.now + 0.25)
    assert {n for _, n in world.asked} == set(range(6))
    assert [q for q in world.queries if isinstance(q, Lookup)] == []


@settings(max_examples=budget(1), deadline=None)
@given(peers=st.integers(2, 12), step=st.floats(0.05, 1.0))
def test_a_name_answered_nxdomain_is_asked_at_most_the_negative_backoffs_queries(
    peers: int, step: float
) -> None:
    """Every query is answered NXDOMAIN at once (the pods are not published; cluster DNS
    caches that 5-30 s): with nobody saying hello, each name is asked over a minute at most
    what ``Timing.dns_negative_backoff`` allows (the least hold its equal jitter gives after
    each answer: 33), not about once a second as the attempts' own backoff would."""
    timing = Timing()
    world = World(_agent(peers, peers - 1, timing, timeout="0"), peers)
    world.take(world.agent.begin(0.0))
    length = 60.0
    while world.now < length:
        for name in sorted(world.out):
            world.land(name, "nxdomain")
        world.tick(min(length, world.now + step))
    most = _most_queries(timing.dns_negative_backoff, 0.0, length)
    for name in range(peers):
        asked = sum(n == name for _, n in world.asked)
        assert asked <= most + 1, (name, asked, most)  # +1: the landing of the last
    assert most < length / timing.backoff.cap / 1.5  # the attempts' backoff alone: 60 and more


def test_a_hello_lets_a_name_held_for_nxdomain_be_asked_at_once() -> None:
    """A negative answer holds the name back, but a hello from that pod (it is up) ends the
    hold: the name is asked again at once, not seconds later."""
    world = World(_agent(3, 2, Timing(), timeout="0"), 3)
    world.take(world.agent.begin(0.0))
    for _ in range(4):  # a few negative answers: the hold grows to seconds
        while 1 not in world.out:
            world.tick(world.now + 0.1)
        world.land(1, "nxdomain")
    held_at = world.now
    world.hello(1)
    world.tick(world.now + 0.01)
    assert 1 in world.out and world.now - held_at < 0.1, world.asked[-3:]
