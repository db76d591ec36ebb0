"""Never two DNS queries for one name in flight (issue 22 item 7), and the root's own name asked
once while it waits less than DNS's TTL.

At 100,000 pods in the in-memory cluster the root asked 33 names: each group coordinator
attempted the root's name (a target) and dialled it at the same instant, the dial asking DNS
for it again while the attempt's query was out (the DNS pace gated a member's dial, not a group
coordinator's), and the root asked its own name again at its first look, a second after its
name had answered. Driven through the pure Agent on a hand-held clock, DNS answering each query
a little later, so that queries out together are seen together.
"""

from __future__ import annotations

import collections
import heapq
import itertools

import pytest

from agent.config.parse import build_config
from agent.core.agent import Agent
from agent.core.effects import Attempt, Dial, Effect, Lookup, Sweep
from agent.core.inputs import Attempted, Input, LookedUp, Reached, Resolution, Swept
from agent.core.timing import DEFAULT_TIMING
from agent.protocol.instance import instance_id
from agent.protocol.wire import Identity
from agent.topology.podfiles import PodFacts

pytestmark = pytest.mark.timeout(20)

PEERS = 300  # a sparse graph on the tree of coordinators: groups of 18
DNS_TIME = 0.05  # each query's answer comes this long after it was asked


def _address(index: int) -> str:
    return f"10.0.{index >> 8}.{(index & 255) + 1}"


def _agent(index: int) -> Agent:
    values = {"peers": str(PEERS), "index": str(index), "service": "svc", "namespace": "ns"}
    config = build_config("wait", {**values, "timeout": "0"}, PodFacts(hostname=f"job-{index}"))
    me = Identity("job", "", index, PEERS, 29300, instance_id(1, index))
    return Agent(config, me=me, now=0.0, rand=lambda: 0.5)


class _Dns:
    """Every peer up at its address; the Service's answer cut at 32. Notes each query by name,
    when it went out and when its answer came back."""

    def __init__(self) -> None:
        self.asked: collections.Counter[int] = collections.Counter()
        self.out: collections.Counter[int] = collections.Counter()  # in flight now, by name
        self.most_out: collections.Counter[int] = collections.Counter()
        self.dials: list[Dial] = []

    def ask(self, effect: Effect) -> tuple[int | None, Input | None]:
        """The name ``effect`` asks DNS for (None: none) and what comes back."""
        match effect:
            case Sweep():
                listed = tuple(_address(i) for i in range(32))
                return None, Swept(Resolution(listed, truncated=True))
            case Attempt(index=index, addresses=addresses):
                reached = Reached(index, instance_id(1, index))
                at = addresses or (_address(index),)
                answer = Attempted(index, reached, address=at[0], addresses=at)
                return (None if addresses else index), answer
            case Lookup(index=index):
                return index, LookedUp(index, Resolution((_address(index),)))
            case Dial(addresses=addresses, index=index):
                self.dials.append(effect)
                return (None if addresses else index), None
        return None, None

    def went_out(self, name: int) -> None:
        self.asked[name] += 1
        self.out[name] += 1
        self.most_out[name] = max(self.most_out[name], self.out[name])


def _run(agent: Agent, until: float) -> _Dns:
    """``agent`` to ``until``: each query answered ``DNS_TIME`` later (a dial's name too: the
    dial itself opens nothing, as if the coordinator's agent were still starting)."""
    dns, order = _Dns(), itertools.count()
    due: list[tuple[float, int, int | None, Input | None]] = []
    now, effects = 0.0, agent.begin(0.0)
    while now <= until:
        for effect in effects:
            name, answer = dns.ask(effect)
            if name is not None:
                dns.went_out(name)
            if name is not None or answer is not None:
                heapq.heappush(due, (now + DNS_TIME, next(order), name, answer))
        wake = agent.next_wakeup()
        if due and due[0][0] <= wake:
            now, _, name, answer = heapq.heappop(due)
            if name is not None:
                dns.out[name] -= 1
            effects = agent.handle(answer, now) if answer is not None else []
        else:
            now, effects = wake, agent.poll(wake)
    return dns


def test_a_group_coordinators_dial_of_the_root_waits_for_its_attempt_of_that_name() -> None:
    """Group coordinator 18 attempts the root's name (a target) and dials the root at the same
    instant: the dial waits for the attempt's answer and dials where it reached the root, so
    the root's name is asked once, never twice at once (before: twice, both out together)."""
    dns = _run(_agent(18), 3.0)
    assert dns.most_out[0] == 1, dns.most_out
    assert dns.asked[0] == 1, dns.asked
    assert [d.addresses for d in dns.dials if d.index == 0][:1] == [(_address(0),)]


@pytest.mark.parametrize("index", [0, 1, 18, 19, 150])
def test_no_pod_has_two_queries_out_for_one_name(index: int) -> None:
    """The root, a member of the root's group, a group coordinator, its member, another member:
    over their first 10 s no name is ever asked while a query for it is out."""
    dns = _run(_agent(index), 10.0)
    assert max(dns.most_out.values()) == 1, dns.most_out


def test_the_roots_own_name_is_asked_once_while_it_waits_within_dns_ttl() -> None:
    """The root, every target reached at once, waits for its members: its own name answered
    a moment ago, and cluster DNS would give that answer again for its TTL
    (``refused_reuse``), so its looks ask it no more in that time (before: again at 1 s)."""
    dns = _run(_agent(0), DEFAULT_TIMING.refused_reuse - 0.1)
    assert dns.asked[0] == 1, dns.asked
