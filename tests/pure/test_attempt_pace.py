"""Attempts and the DNS pace (``agent.core.asking``): an attempt that reuses addresses that
refused a moment ago asks no DNS, so it takes no query from the pace, and the pace's count of
queries must not stop the attempts that take none. Found at 3,000 pods with faults in the
in-memory cluster (``make scale``): a pod started only as many attempts as it had queries, one
of them such a reuse, and asked to be woken in the past with an attempt due and a query unused
(the runner would spin). Events in, effects out, on a hand-held clock."""

from __future__ import annotations

import dataclasses

import pytest

from agent.config.parse import build_config
from agent.core.agent import Agent
from agent.core.causes import Cause, Failure
from agent.core.effects import Attempt
from agent.core.inputs import Attempted, Unreached
from agent.core.timing import DEFAULT_TIMING
from agent.protocol.instance import instance_id
from agent.protocol.wire import Identity
from agent.topology.podfiles import PodFacts

pytestmark = pytest.mark.timeout(20)

#: three queries a second, whatever the answers: the pace is what is scarce
SCARCE = dataclasses.replace(DEFAULT_TIMING, dns_start_job_rate=9.0, dns_rate_max=3.0)


def _agent() -> Agent:
    values = {"peers": "3", "index": "0", "probe": "dns", "service": "svc", "namespace": "ns"}
    config = build_config("wait", values, PodFacts(hostname="job-0"))
    me = Identity("job", "", 0, 3, 29300, instance_id(1, 0))
    return Agent(config, me=me, now=0.0, rand=lambda: 0.5, timing=SCARCE)


def test_an_attempt_that_asks_no_dns_does_not_hold_back_one_that_may() -> None:
    """Pods 1 and 2 refuse at their one address (nobody listens yet) and time out; each is
    attempted again as its backoff says, pod 1 at the refused address without a query. After
    every poll the agent's next wake-up is in the future, and pod 1's reuse goes out with a
    query to spare for pod 2 when the pace has one."""
    agent = _agent()
    out = agent.begin(0.0)
    assert {e.index for e in out if isinstance(e, Attempt)} == {0, 1, 2}
    refused = Unreached(Failure("connection refused", Cause.CONNECT_REFUSED))
    agent.handle(Attempted(1, refused, "10.0.0.2", ("10.0.0.2",), ("10.0.0.2",)), 0.01)
    timeout = Unreached(Failure("timed out", Cause.CONNECT_TIMEOUT))
    agent.handle(Attempted(2, timeout, "10.0.0.3", ("10.0.0.3",)), 0.02)
    reused = []
    now = 0.02
    while now < 3.0:
        now = agent.next_wakeup()
        for effect in agent.poll(now):
            if isinstance(effect, Attempt) and effect.index in (1, 2):
                reused += [effect.index] if effect.addresses else []
                result = refused if effect.index == 1 else timeout
                refused_at = ("10.0.0.2",) if effect.index == 1 else ()
                address = f"10.0.0.{effect.index + 1}"
                agent.handle(Attempted(effect.index, result, address, (address,), refused_at), now)
        assert agent.next_wakeup() > now
    assert 1 in reused
