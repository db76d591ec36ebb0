"""Why each missing peer is missing, when the Service's answer cannot pair the missing peers with
the listed addresses that do not answer as one (``agent.core.ambiguity``): the pure Agent on a
hand-held clock, its DNS and probes played by the test, by-name attempts judged by the shipped
``NameAttempt``.

A listed address that refuses, times out or fails the token proof says no index. One missing
peer and one such address pair up with no question asked; more of either are asked for by name,
but only once that has lasted ``Timing.ambiguous_by_name_after`` (or half the timeout): every
start-up is briefly like that, and asking then would multiply DNS queries by the Job's size.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import pytest

from agent.config.parse import build_config
from agent.core.agent import Agent
from agent.core.answers import NameAttempt
from agent.core.causes import Cause, Failure
from agent.core.effects import Attempt, Effect, Fail, ProbeAddress, Sweep
from agent.core.inputs import (
    AddressProbed,
    Attempted,
    Input,
    ProbeResult,
    Reached,
    Resolution,
    Swept,
    Unreached,
)
from agent.core.timing import DEFAULT_TIMING
from agent.errors import BarrierTimeout
from agent.exitcodes import ExitCode
from agent.protocol.instance import instance_id
from agent.protocol.wire import Identity
from agent.topology.podfiles import PodFacts

pytestmark = pytest.mark.timeout(20)

AFTER = DEFAULT_TIMING.ambiguous_by_name_after
REFUSED = Failure("connect to port 29300: refused", Cause.CONNECT_REFUSED)
TOKEN = Failure("peer refused our token proof (a different token)", Cause.REFUSED_BY_PEER)
TIMED_OUT = Failure("connect to port 29300 timed out", Cause.CONNECT_TIMEOUT)
UP = None  # the pod's agent answers as itself


def _address(index: int) -> str:
    return f"10.0.0.{index + 1}"


@dataclass
class Pod:
    """What is at a pod's address: its agent (``UP``), or why a probe fails there, from
    ``until`` on its agent answers (a start-up race); ``named``: its own name has a record;
    ``listed``: the Service lists its address."""

    fails: Failure | None = UP
    until: float = float("inf")
    named: bool = True
    listed: bool = True
    #: what is there from ``until`` on: its agent (``UP``), or another failure (it left)
    then: Failure | None = UP
    #: when the Service starts listing it
    listed_from: float = 0.0


@dataclass
class World:
    """Pod 0 of ``len(pods)`` (its own pod is ``pods[0]``), and ``stale`` listed addresses where
    nothing of the Job answers (a replaced pod's old record)."""

    pods: list[Pod]
    timeout: str = "600s"
    stale: dict[str, Failure] = field(default_factory=dict)
    agent: Agent = field(init=False)
    #: (time, index) of each attempt of a peer by name other than this pod's own
    by_name: list[tuple[float, int]] = field(default_factory=list)
    failed: BarrierTimeout | None = None
    now: float = 0.0

    def __post_init__(self) -> None:
        peers = str(len(self.pods))
        values = {"peers": peers, "index": "0", "service": "svc", "namespace": "ns"}
        config = build_config("wait", {**values, "timeout": self.timeout}, PodFacts("job-0"))
        me = Identity("job", "", 0, len(self.pods), 29300, instance_id(0, 0))
        self.agent = Agent(config, me=me, now=0.0, rand=lambda: 0.5)
        self._do(self.agent.begin(0.0), 0.0)

    def _probe(self, address: str, now: float) -> ProbeResult:
        if address in self.stale:
            return Unreached(self.stale[address])
        index = int(address.rsplit(".", 1)[1]) - 1
        pod = self.pods[index]
        if pod.fails is not None and now < pod.until:
            return Unreached(pod.fails)
        if now >= pod.until and pod.then is not None:
            return Unreached(pod.then)
        return Reached(index, instance_id(index, 0))

    def _by_name(self, index: int, now: float) -> Attempted:
        if index:
            self.by_name.append((now, index))
        if not self.pods[index].named:
            nxdomain = Failure("NXDOMAIN", Cause.NXDOMAIN)
            return NameAttempt(index, "", Resolution(failure=nxdomain)).outcome()
        instance = instance_id(0, 0) if index == 0 else ""
        attempt = NameAttempt(index, instance, Resolution((_address(index),)))
        attempt.probed(_address(index), self._probe(_address(index), now))
        return attempt.outcome()

    def _answer(self, effect: Effect, now: float) -> Input | None:
        match effect:
            case Sweep():
                pods = enumerate(self.pods)
                listed = [_address(i) for i, p in pods if p.listed and now >= p.listed_from]
                return Swept(Resolution((*listed, *self.stale)))
            case ProbeAddress(address=address):
                return AddressProbed(address, self._probe(address, now))
            case Attempt(index=index):
                return self._by_name(index, now)
            case Fail(error=BarrierTimeout() as error):
                self.failed = error
        return None

    def _do(self, effects: list[Effect], now: float) -> None:
        todo = deque(effects)
        while todo:
            answer = self._answer(todo.popleft(), now)
            if answer is not None:
                todo.extend(self.agent.handle(answer, now))

    def run_until(self, end: float) -> None:
        """Every wake-up the agent asks for, up to ``end`` (or until it has finished). A wake-up
        already past (a peer due since the start, scheduled by name only now) is now, as the
        runner and the in-memory cluster take it."""
        while not self.agent.finished and (due := self.agent.next_wakeup()) <= end:
            self.now = now = max(self.now, due)
            self._do(self.agent.poll(now), now)

    def asked(self) -> set[int]:
        return {index for _, index in self.by_name}

    def first_asked(self) -> float:
        return min(t for t, _ in self.by_name)

    def line(self, index: int) -> str:
        """The timeout's line for peer ``index``."""
        assert self.failed is not None
        name = f"job-{index}.svc.ns.svc.cluster.local: "
        [line] = [m for m in self.failed.missing if m.startswith(name)]
        return line.removeprefix(name)


# --- ambiguity: the names are asked, after the delay and not before -------------------------------
AMBIGUOUS = [
    pytest.param(
        [Pod(), Pod(REFUSED), Pod(TOKEN)], {}, {1, 2}, id="two-missing-two-silent-addresses"
    ),
    pytest.param(
        [Pod(), Pod(REFUSED), Pod(named=False, listed=False)], {}, {1, 2}, id="one-not-listed"
    ),
    pytest.param(
        [Pod(), Pod(), Pod(named=False, listed=False)],
        {"10.0.0.9": REFUSED, "10.0.0.8": TIMED_OUT},
        {2},
        id="one-missing-two-stale-addresses",
    ),
]


@pytest.mark.parametrize(("pods", "stale", "asked"), AMBIGUOUS)
def test_missing_peers_that_cannot_be_paired_are_asked_for_by_name_once_that_lasts(
    pods: list[Pod], stale: dict[str, Failure], asked: set[int]
) -> None:
    world = World(pods, stale=stale)
    world.run_until(AFTER - 0.01)
    assert world.by_name == []  # not before: every start-up is briefly like this
    world.run_until(AFTER + 3.0)  # rounds come about a second apart (0.75 s here)
    assert world.asked() == asked
    # the first answer finds nothing probed yet: the ambiguity is seen from the second round
    assert AFTER < world.first_asked() <= AFTER + 2.0


def test_a_short_timeout_asks_the_names_by_half_of_it() -> None:
    """A 10 s timeout: the names are asked after 5 s, so its report has their answers."""
    world = World([Pod(), Pod(REFUSED), Pod(TOKEN)], timeout="10s")
    world.run_until(4.99)
    assert world.by_name == []
    world.run_until(11.0)
    assert world.asked() == {1, 2} and 5.0 < world.first_asked() <= 7.0
    assert world.failed is not None


def test_of_many_silent_peers_only_the_first_eight_are_asked_for() -> None:
    """Twenty peers listed and refusing: asking each name would cost every pod of a large
    Job a query a silent peer; the first eight get a reason of their own, the rest the list."""
    world = World([Pod(), *[Pod(REFUSED) for _ in range(20)]])
    world.run_until(AFTER + 3.0)
    assert world.asked() == set(range(1, 9))


def test_another_token_seen_before_the_names_were_asked_still_exits_4() -> None:
    """Pod 2 has another token and gives up early: asked for by name, its address only
    refuses; what it told the Service's round still makes the timeout exit 4."""
    then = Pod(TOKEN, until=5.0, then=REFUSED)
    world = World([Pod(), Pod(REFUSED), then], timeout="20s")
    world.run_until(21.0)
    assert world.asked() == {1, 2}
    assert world.failed is not None and world.failed.exit_code == ExitCode.ABORTED


def test_another_token_among_silent_addresses_that_were_never_paired_exits_4() -> None:
    """Pods 1 and 2 listed late: the ambiguity lasts less than the delay, so no name is
    asked; a silent address told another token, so the timeout exits 4, not 3 with a hint
    that the missing peers are not in DNS."""
    late = [Pod(REFUSED, listed_from=7.0), Pod(TOKEN, listed_from=7.0)]
    world = World([Pod(), *late], timeout="12s")
    world.run_until(13.0)
    assert world.by_name == []
    assert world.failed is not None and world.failed.exit_code == ExitCode.ABORTED
    assert not any("not in DNS" in hint for hint in world.failed.hints)


# --- no ambiguity: no by-name question ------------------------------------------------------------
CERTAIN = [
    pytest.param([Pod(), Pod(REFUSED), Pod()], {}, id="one-missing-one-silent-address"),
    pytest.param(
        [Pod(), Pod(named=False, listed=False), Pod(named=False, listed=False)],
        {},
        id="missing-peers-not-listed",
    ),
    pytest.param(
        [Pod(), Pod(REFUSED, until=8.0), Pod(REFUSED, until=20.0), Pod(TOKEN, until=3.0)],
        {},
        id="a-start-up-race-shorter-than-the-delay",
    ),
    pytest.param([Pod(), Pod(), Pod()], {"10.0.0.9": REFUSED}, id="a-stale-address-none-missing"),
]


@pytest.mark.parametrize(("pods", "stale"), CERTAIN)
def test_no_peer_is_asked_for_by_name_when_the_service_answer_says_enough(
    pods: list[Pod], stale: dict[str, Failure]
) -> None:
    world = World(pods, stale=stale, timeout="120s")
    world.run_until(121.0)
    assert world.by_name == []


# --- the cause per peer ---------------------------------------------------------------------------
def test_each_missing_peer_gets_its_own_address_reason_and_cause() -> None:
    """Pod 1 refuses, pod 2 has another token, pod 3 is not published. The timeout gives each
    its own line, and exits 4 for pod 2's token, as it would with pod 2 missing alone."""
    pods = [Pod(), Pod(REFUSED), Pod(TOKEN), Pod(named=False, listed=False)]
    world = World(pods, timeout="60s")
    world.run_until(61.0)
    status = world.agent.status
    assert [status.cause(i) for i in (1, 2, 3)] == [
        Cause.CONNECT_REFUSED,
        Cause.REFUSED_BY_PEER,
        Cause.NXDOMAIN,
    ]
    assert world.line(1) == f"10.0.0.2: {REFUSED.reason}"
    assert world.line(2) == f"10.0.0.3: {TOKEN.reason}"
    assert world.line(3) == "NXDOMAIN"
    assert world.failed is not None and world.failed.exit_code == ExitCode.ABORTED


def test_before_the_names_are_asked_every_silent_address_is_named() -> None:
    """While the ambiguity has not lasted, a missing peer's reason names the addresses it may
    be at, and the cause to act on is the telling one among them (another token): never "not
    listed", since they are."""
    world = World([Pod(), Pod(REFUSED), Pod(TOKEN)])
    world.run_until(AFTER / 2)
    status = world.agent.status
    for index in (1, 2):
        assert "10.0.0.2 (connect to port 29300: refused)" in status.reason(index)
        assert "10.0.0.3 (peer refused our token proof" in status.reason(index)
        assert status.cause(index) is Cause.REFUSED_BY_PEER


def test_one_missing_peer_at_the_one_silent_address_is_said_without_a_question() -> None:
    world = World([Pod(), Pod(), Pod(TOKEN)], timeout="60s")
    world.run_until(61.0)
    assert world.by_name == []
    assert world.agent.status.cause(2) is Cause.REFUSED_BY_PEER
    assert world.line(2) == (
        f"at 10.0.0.3 (the one address of the Service not answering as a peer): {TOKEN.reason}"
    )
    assert world.failed is not None and world.failed.exit_code == ExitCode.ABORTED
