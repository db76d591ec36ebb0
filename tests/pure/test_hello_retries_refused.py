"""A target that refused for a while (its agent not up) is tried again at once when its hello
comes, not at the end of its refused backoff: the hello is how a waiting pod notices a peer
that comes up (``bench.cutanswer 300``: with the backoff at 30 s and no retry on such a hello,
the last pod's targets reached it up to 28 s after it started, 2.6 s before). Driven through
the pure Agent on a hand-held clock, pod 120 of 300 (a sparse graph)."""

from __future__ import annotations

import pytest

from agent.config.parse import build_config
from agent.core.agent import Agent
from agent.core.causes import Cause, Failure
from agent.core.effects import Attempt, Effect, Sweep
from agent.core.inputs import Attempted, Contacted, Resolution, Swept, Unreached
from agent.protocol.instance import instance_id
from agent.protocol.wire import Hello, Identity, Role
from agent.topology.podfiles import PodFacts

pytestmark = pytest.mark.timeout(10)

N, ME = 300, 120
REFUSED = Unreached(Failure("connect to port 29300: refused", Cause.CONNECT_REFUSED))


def _address(index: int) -> str:
    return f"10.0.{index >> 8}.{(index & 255) + 1}"


def _answered(agent: Agent, effects: list[Effect], now: float, log: list[Attempt]) -> None:
    """Every attempt refused at the address DNS gives; the Service's answer cut at 32."""
    while effects:
        out: list[Effect] = []
        for e in effects:
            if isinstance(e, Sweep):
                cut = Resolution(tuple(_address(i) for i in range(32)), truncated=True)
                out += agent.handle(Swept(cut), now)
            elif isinstance(e, Attempt):
                log.append(e)
                at = (_address(e.index),)
                out += agent.handle(Attempted(e.index, REFUSED, addresses=at, refused_at=at), now)
        effects = out


@pytest.mark.parametrize(
    ("source", "asks_dns"),
    [
        pytest.param(_address, False, id="from-where-it-refused-tried-there"),
        pytest.param(lambda i: "10.9.9.9", True, id="from-elsewhere-its-name-asked"),
    ],
)
def test_a_hello_retries_a_refusing_target_at_once(source: object, asks_dns: bool) -> None:
    config = build_config(
        "wait",
        {"peers": str(N), "index": str(ME), "service": "svc", "namespace": "ns", "timeout": "0"},
        PodFacts(hostname=f"job-{ME}"),
    )
    me = Identity("job", "", ME, N, 29300, instance_id(1, ME))
    agent = Agent(config, me=me, now=0.0, rand=lambda: 0.999)
    target = max(agent.reach.targets)
    log: list[Attempt] = []
    now, hello_at = 0.0, 60.0
    _answered(agent, agent.begin(now), now, log)
    while (now := agent.next_wakeup()) < hello_at:
        _answered(agent, agent.poll(now), now, log)
    assert agent.reach.peers[target].next_at > hello_at + 10  # backed off: nobody listens
    assert callable(source)
    hello = Hello(Identity("job", "", target, N, 29300, instance_id(2, target)), Role.MEMBER, "n")
    log.clear()
    _answered(agent, agent.handle(Contacted(hello, source(target)), hello_at), hello_at, log)
    _answered(agent, agent.poll(hello_at), hello_at, log)
    [retry] = [a for a in log if a.index == target]
    assert retry.addresses == (() if asks_dns else (_address(target),))
