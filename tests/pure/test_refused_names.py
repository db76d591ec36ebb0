"""A name whose every address refused is tried again at them without asking DNS, for a while.

A peer's pod is published, and its address refuses, until its agent listens: a member's dials of
a coordinator that is still starting, and the attempts of a peer by name, used to ask cluster
DNS again at every retry. Driven through the pure Agent on a hand-held clock.
"""

from __future__ import annotations

import collections
import itertools

import pytest

from agent.config.parse import build_config
from agent.core.agent import Agent
from agent.core.answers import NameAttempt
from agent.core.causes import Cause, Failure
from agent.core.effects import Attempt, Dial, Effect, Lookup, ProbeAddress, Sweep
from agent.core.inputs import (
    AddressProbed,
    Attempted,
    Contacted,
    DialFailed,
    Input,
    LookedUp,
    Reached,
    Resolution,
    Swept,
    Unreached,
)
from agent.core.timing import DEFAULT_TIMING
from agent.protocol.instance import instance_id
from agent.protocol.wire import Hello, Identity, Role
from agent.topology.podfiles import PodFacts

pytestmark = pytest.mark.timeout(10)

REUSE = DEFAULT_TIMING.refused_reuse
CAP = DEFAULT_TIMING.refused_reuse_cap
REFUSED = Unreached(Failure("connect to port 29300: refused", Cause.CONNECT_REFUSED))
TIMED_OUT = Unreached(Failure("connect to port 29300 timed out", Cause.CONNECT_TIMEOUT))


def _agent(peers: int, index: int, **values: str) -> Agent:
    config = build_config(
        "wait",
        {"peers": str(peers), "index": str(index), "service": "svc", "namespace": "ns", **values},
        PodFacts(hostname=f"job-{index}"),
    )
    me = Identity("job", "", index, peers, 29300, f"{index:016x}")
    return Agent(config, me=me, now=0.0, rand=lambda: 0.5)


def _dials(effects: list[Effect]) -> list[Dial]:
    return [e for e in effects if isinstance(e, Dial)]


def _dial_until(agent: Agent, end: float, answer: DialFailed) -> list[tuple[float, Dial]]:
    """Every dial the member makes until ``end``, each answered with ``answer``."""
    dials, now = [], 0.0
    effects = agent.begin(now)
    while now < end:
        for dial in _dials(effects):
            dials.append((now, dial))
            effects = agent.handle(answer, now)
        now = agent.next_wakeup()
        effects = agent.poll(now)
    return dials


def test_a_coordinator_that_refuses_is_asked_for_once_per_reuse_window() -> None:
    """DNS is asked again once a window has passed; the same addresses given and refused
    again make the next window twice as long, up to the cap; with a probe that says hello, at
    most ``refused_total_most`` times past the first (the next test)."""
    member = _agent(3, 1, timeout="0")
    refused = DialFailed("10.0.0.1: connect to port 29300: refused", ("10.0.0.1",))
    windows = [REUSE, 2 * REUSE, 4 * REUSE, CAP][: DEFAULT_TIMING.refused_total_most]
    dials = _dial_until(member, sum(windows) + 3.0, refused)
    asked = [t for t, dial in dials if not dial.addresses]
    assert len(dials) > 10  # retried with backoff, as before
    assert len(asked) == 1 + len(windows)  # at the start, then once each window
    gaps = [later - earlier for earlier, later in itertools.pairwise(asked)]
    assert all(w <= gap <= w + 1.5 for gap, w in zip(gaps, windows, strict=True)), gaps
    assert {d.addresses for _, d in dials if d.addresses} == {("10.0.0.1",)}


def test_with_a_hello_probe_a_refusing_coordinator_is_asked_again_a_few_times_in_all() -> None:
    """Issue 22: a member waiting minutes for its coordinator's agent asked its name again at
    every window's end; with a probe that says hello, the coordinator says hello once up (and
    the dial goes on at the address that refused), so past the first ask DNS is asked at most
    ``refused_total_most`` times more, at the windows' ends, however long it waits."""
    member = _agent(3, 1, timeout="0")
    refused = DialFailed("10.0.0.1: connect to port 29300: refused", ("10.0.0.1",))
    dials = _dial_until(member, 300.0, refused)
    asked = [t for t, dial in dials if not dial.addresses]
    assert len(asked) == 1 + DEFAULT_TIMING.refused_total_most, asked
    assert asked[1] == pytest.approx(REUSE, abs=1.5)
    assert len(dials) > 100  # tried again and again where it refused, without DNS


def test_a_dial_that_failed_any_other_way_asks_dns_again() -> None:
    member = _agent(3, 1, timeout="0")
    timed_out = DialFailed("10.0.0.1: connect to port 29300 timed out")
    dials = _dial_until(member, 5.0, timed_out)
    assert len(dials) > 3 and all(not dial.addresses for _, dial in dials)


def test_a_peer_asked_for_by_name_is_retried_where_it_refused() -> None:
    """``--probe tcp:PORT`` asks for every peer by name."""
    agent = _agent(3, 0, probe="tcp:8080", timeout="0")
    attempts = [e for e in agent.begin(0.0) if isinstance(e, Attempt)]
    assert {a.index: a.addresses for a in attempts} == {0: (), 1: (), 2: ()}
    agent.handle(Attempted(2, REFUSED, refused_at=("10.0.0.3",)), 0.1)
    agent.handle(Attempted(1, TIMED_OUT), 0.1)
    later = agent.poll(agent.next_wakeup())
    later += agent.poll(1.0)
    retried = {a.index: a.addresses for a in later if isinstance(a, Attempt)}
    assert retried == {1: (), 2: ("10.0.0.3",)}


def test_an_answer_from_whichever_pod_ends_the_reuse() -> None:
    """A replaced pod's new address is found: once anything but a refusal comes back (here
    another pod answers at the address), the next attempt asks DNS."""
    agent = _agent(3, 0, probe="tcp:8080", timeout="0")
    agent.begin(0.0)
    agent.handle(Attempted(2, REFUSED, refused_at=("10.0.0.3",)), 0.1)
    other = Unreached(Failure("pod 1 answers, not pod 2", Cause.STRANGER))
    [retry] = [a for a in agent.poll(1.0) if isinstance(a, Attempt) and a.index == 2]
    assert retry.addresses == ("10.0.0.3",)
    agent.handle(Attempted(2, other), 1.1)
    [again] = [a for a in agent.poll(2.2) if isinstance(a, Attempt) and a.index == 2]
    assert again.addresses == ()


def _retry_of(agent: Agent, index: int, now: float) -> Attempt:
    [retry] = [a for a in agent.poll(now) if isinstance(a, Attempt) and a.index == index]
    return retry


def test_a_hello_from_the_peer_or_another_answer_for_its_name_ends_the_reuse() -> None:
    """An outside review: pod 2 replaced, its old address refusing while DNS still gave it, was
    tried there until the window ended (up to 30 s after DNS listed the new address). Its
    hello says its agent is up elsewhere, and a lookup of its name (the check of a held
    session) that gives other addresses says DNS moved on: either way the next attempt asks."""
    for event in (
        Contacted(Hello(Identity("job", "", 2, 3, 29300, "2" * 16), Role.MEMBER, "n"), "10.0.9.9"),
        LookedUp(2, Resolution(("10.0.9.9",))),
    ):
        agent = _agent(3, 0, probe="tcp:8080", timeout="0")
        agent.begin(0.0)
        agent.handle(Attempted(2, REFUSED, refused_at=("10.0.0.3",)), 0.1)
        assert _retry_of(agent, 2, 1.0).addresses == ("10.0.0.3",)
        agent.handle(Attempted(2, REFUSED, refused_at=("10.0.0.3",)), 1.1)
        agent.handle(event, 1.2)
        assert _retry_of(agent, 2, 3.0).addresses == (), event


def test_its_own_name_is_asked_of_dns_every_time() -> None:
    """The check of this pod's own name is there to see DNS list it: a refusal at the address
    DNS gave (a stale one, the old pod's) must not keep it from asking again."""
    agent = _agent(3, 1, probe="tcp:8080", timeout="0", listen="10.0.0.2")
    agent.begin(0.0)
    agent.handle(Attempted(1, REFUSED, refused_at=("10.0.0.7",)), 0.1)
    assert _retry_of(agent, 1, 1.0).addresses == ()


@pytest.mark.parametrize("where", ["listen", "hosts"])
def test_its_own_name_at_its_own_address_is_not_asked_again_while_its_port_refuses(
    where: str,
) -> None:
    """An outside review: under --probe tcp:PORT, a pod whose own workload port opened late
    asked its own name twice a second (37 queries in 20 s) though DNS gave its own address
    every time; only the port refused. Its own address is --listen, or kubelet's /etc/hosts."""
    hosts = "10.0.0.2\tjob-1.svc.ns.svc.cluster.local\tjob-1\n"
    config = build_config(
        "wait",
        {"peers": "3", "index": "1", "service": "svc", "namespace": "ns", "probe": "tcp:8080"}
        | {"timeout": "0"}
        | ({"listen": "10.0.0.2"} if where == "listen" else {}),
        PodFacts(hostname="job-1", hosts=hosts if where == "hosts" else ""),
    )
    agent = Agent(
        config, me=Identity("job", "", 1, 3, 29300, f"{1:016x}"), now=0.0, rand=lambda: 0.5
    )
    agent.begin(0.0)
    agent.handle(Attempted(1, REFUSED, refused_at=("10.0.0.2",)), 0.1)
    assert _retry_of(agent, 1, 1.0).addresses == ("10.0.0.2",)
    hello = _agent(3, 1, timeout="0", listen="10.0.0.2")  # its own listener: a hello
    hello.begin(0.0)
    hello.handle(Attempted(1, REFUSED, refused_at=("10.0.0.2",)), 0.1)
    assert _retry_of(hello, 1, 1.0).addresses == ()


def test_an_attempt_refused_at_every_address_says_so_and_only_then() -> None:
    both = NameAttempt(1, "", Resolution(("10.0.0.2", "10.0.0.9")))
    both.probed("10.0.0.2", REFUSED)
    both.probed("10.0.0.9", REFUSED)
    assert both.outcome().refused_at == ("10.0.0.2", "10.0.0.9")
    # a timeout is the pod busy, not gone: tried there again too (test_busy_peers_names.py)
    busy = NameAttempt(1, "", Resolution(("10.0.0.2", "10.0.0.9")))
    busy.probed("10.0.0.2", REFUSED)
    busy.probed("10.0.0.9", TIMED_OUT)
    assert busy.outcome().refused_at == ("10.0.0.2", "10.0.0.9")
    gone = NameAttempt(1, "", Resolution(("10.0.0.2", "10.0.0.9")))
    gone.probed("10.0.0.2", REFUSED)
    gone.probed("10.0.0.9", Unreached(Failure("no route to host", Cause.UNREACHABLE)))
    assert gone.outcome().refused_at == ()
    reached = NameAttempt(1, "", Resolution(("10.0.0.2",)))
    reached.probed("10.0.0.2", Reached(1, "i1"))
    assert reached.outcome().refused_at == ()


def _addresses(peers: int) -> tuple[str, ...]:
    return tuple(f"10.0.0.{i + 1}" for i in range(peers))


def _queries_and_probes(
    peers: int, refusing: set[int], until: float
) -> tuple[collections.Counter[str], collections.Counter[str]]:
    """Pod 0 of ``peers`` discovering by the Service, run to ``until`` on a hand-held clock:
    every DNS query it asks (by name: ``name I``; the Service: ``service``) and every probe of
    each address. The pods in ``refusing`` are published but refuse (their agents not up); the
    others answer as themselves."""
    listed = _addresses(peers)
    config = build_config(
        "wait",
        {"peers": str(peers), "index": "0", "service": "svc", "namespace": "ns", "timeout": "0"},
        PodFacts(hostname="job-0"),
    )
    me = Identity("job", "", 0, peers, 29300, instance_id(1, 0))
    agent = Agent(config, me=me, now=0.0, rand=lambda: 0.5)
    queries: collections.Counter[str] = collections.Counter()
    probes: collections.Counter[str] = collections.Counter()

    def result(index: int) -> Reached | Unreached:
        return REFUSED if index in refusing else Reached(index, instance_id(1, index))

    def answer(effect: Effect) -> Input | None:
        if isinstance(effect, Sweep):
            queries["service"] += 1
            return Swept(Resolution(listed))
        if isinstance(effect, Attempt):
            if not effect.addresses:
                queries[f"name {effect.index}"] += 1
            refused = (listed[effect.index],) if effect.index in refusing else ()
            return Attempted(effect.index, result(effect.index), refused_at=refused)
        if isinstance(effect, Lookup):
            queries[f"name {effect.index}"] += 1
            return LookedUp(effect.index, Resolution((listed[effect.index],)))
        if isinstance(effect, ProbeAddress):
            probes[effect.address] += 1
            return AddressProbed(effect.address, result(listed.index(effect.address)))
        return None

    now, effects = 0.0, agent.begin(0.0)
    while now < until:
        while effects:
            inputs = [i for i in map(answer, effects) if i is not None]
            effects = [e for i in inputs for e in agent.handle(i, now)]
        now = agent.next_wakeup()
        effects = agent.poll(now)
    return queries, probes


def test_refused_and_repeated_probes_ask_dns_nothing_more() -> None:
    """Issue 22: pods DNS lists whose agents are not up yet refuse every probe, again at every
    round, for as long as they take to start: what DNS is asked is the same whether one pod
    refuses or seven, and none of them is asked for by name."""
    one, one_probes = _queries_and_probes(8, {7}, 30.0)
    seven, seven_probes = _queries_and_probes(8, set(range(1, 8)), 30.0)
    assert seven == one
    assert set(seven) == {"service", "name 0"}  # the rounds, and this pod's own name
    refused = [seven_probes[a] for a in _addresses(8)[1:]]
    assert min(refused) > 5  # each retried round after round
    # a round every half to all of the backoff's cap (equal jitter): nothing per probe
    assert seven["service"] <= 30.0 / (0.5 * DEFAULT_TIMING.backoff.cap) + 1
    assert one_probes[_addresses(8)[7]] == seven_probes[_addresses(8)[7]]


def test_a_dial_reuses_where_the_coordinator_was_just_reached_by_name() -> None:
    """Issue 22: every member attempted its coordinator's name (a target) and then asked DNS
    for it again to dial it, one query a pod more; an answer that fresh is reused, as a
    refused one is, and once it is older than the reuse window the dial asks DNS again."""
    member = _agent(3, 1, probe="tcp:8080", timeout="0")
    member.begin(0.0)
    member.handle(Attempted(0, Reached(), address="10.0.0.1", addresses=("10.0.0.1",)), 0.1)
    dials = _dials(member.poll(0.2))
    assert [d.addresses for d in dials] == [("10.0.0.1",)]
    member.handle(DialFailed("10.0.0.1: connect to port 29300 timed out"), 0.3)
    later = _dials(member.poll(0.1 + REUSE + 1.0))
    assert [d.addresses for d in later] == [()]
