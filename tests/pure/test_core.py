"""The pure Agent driven directly: events in, effects out, on a hand-held clock.

Each test is a short scenario a user would notice, and none needs a network: this is the code
the runner and the in-memory cluster both drive.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest

from agent.config.parse import build_config
from agent.core.agent import Agent
from agent.core.causes import Cause, Failure
from agent.core.effects import Attempt, Effect, Fail, ProbeAddress, Report, Sweep
from agent.core.inputs import (
    AddressProbed,
    Attempted,
    Disagreeing,
    Reached,
    Resolution,
    Swept,
    Unreached,
)
from agent.core.phase import MOVES, Phase
from agent.core.timing import DEFAULT_TIMING
from agent.errors import BarrierAborted
from agent.protocol.instance import instance_id
from agent.protocol.wire import Identity
from agent.topology.podfiles import PodFacts

pytestmark = pytest.mark.timeout(10)


def _agent(peers: int, index: int, **values: str) -> Agent:
    config = build_config(
        "wait",
        {"peers": str(peers), "index": str(index), "service": "svc", "namespace": "ns", **values},
        PodFacts(hostname=f"job-{index}"),
    )
    me = Identity("job", "", index, peers, 29300, instance_id(index, 0))
    return Agent(config, me=me, now=0.0, rand=lambda: 0.5)


def _reports(effects: list[Effect]) -> list[str]:
    return [e.line.message for e in effects if isinstance(e, Report)]


def test_a_pod_restarted_after_its_peers_passed_is_told_within_seconds() -> None:
    """Its peers' pods are up (DNS lists them) but their agents have left: every probe is
    refused. The first progress line says so, instead of waiting silently for --timeout."""
    agent = _agent(3, 1)
    assert Sweep() in agent.begin(0.0)
    listed = ("10.0.0.1", "10.0.0.2", "10.0.0.3")
    probes = agent.handle(Swept(Resolution(listed)), 0.1)
    assert {p.address for p in probes if isinstance(p, ProbeAddress)} == set(listed)
    refused = Unreached(Failure("connect to port 29300: refused", Cause.CONNECT_REFUSED))
    for address in ("10.0.0.1", "10.0.0.3"):
        agent.handle(AddressProbed(address, refused), 0.2)
    mine = Reached(index=1, instance=instance_id(1, 0))
    agent.handle(AddressProbed("10.0.0.2", mine), 0.2)
    [line] = _reports(agent.poll(DEFAULT_TIMING.progress_every))
    assert "1/3 peers reached" in line
    assert "nobody listens on port 29300" in line and "only sidecar mode" in line


def _moves(agent: Agent, step: Callable[[], object], seen: list[Phase]) -> None:
    step()
    if agent.phase is not seen[-1]:
        assert (seen[-1], agent.phase) in MOVES, (seen[-1], agent.phase)
        seen.append(agent.phase)


def test_a_pod_alone_passes_once_it_reaches_itself_and_its_phases_say_so() -> None:
    """Index 0 of one pod: reaching itself (its own name, its own instance) releases it, and
    the next poll ends the wait (no member to await an ack from)."""
    agent = _agent(1, 0)
    seen = [agent.phase]
    assert seen == [Phase.DISCOVERING]
    [attempt] = [e for e in agent.begin(0.0) if isinstance(e, Attempt)]
    assert attempt == Attempt(0, agent.me.instance)
    answered = Attempted(0, Reached(0, agent.me.instance), "10.0.0.1", ("10.0.0.1",))
    _moves(agent, lambda: agent.handle(answered, 0.1), seen)
    _moves(agent, lambda: agent.poll(0.1), seen)
    assert seen == [Phase.DISCOVERING, Phase.RELEASED, Phase.FINISHED]
    assert agent.next_wakeup() == math.inf


def test_an_aborted_pod_answers_a_while_then_fails() -> None:
    """A pod of this job that disagrees on it aborts the barrier; the pod lingers (so peers
    that have not met the odd one learn of it from its hello), then its wait fails."""
    agent = _agent(3, 1, timeout="0")
    seen = [agent.phase]
    agent.begin(0.0)
    _moves(agent, lambda: agent.handle(AddressProbed("10.0.0.3", Disagreeing("n")), 0.2), seen)
    assert seen == [Phase.DISCOVERING, Phase.ABORTED]
    linger = DEFAULT_TIMING.abort_linger
    assert agent.next_wakeup() == 0.2 + linger and agent.poll(0.2 + linger / 2) == []
    effects: list[Effect] = []
    _moves(agent, lambda: effects.extend(agent.poll(0.2 + linger)), seen)
    assert seen[-1] is Phase.FINISHED
    assert [type(e.error) for e in effects if isinstance(e, Fail)] == [BarrierAborted]
