"""The pure Agent driven directly: events in, effects out, on a hand-held clock.

Each test is a short scenario a user would notice, and none needs a network: this is the code
the runner and the in-memory cluster both drive.
"""

from __future__ import annotations

import pytest

from agent.config.parse import build_config
from agent.core.agent import PROGRESS_EVERY, Agent
from agent.core.causes import Cause
from agent.core.effects import Effect, Probe, Query, Report
from agent.core.inputs import AddressProbed, ProbeResult, Resolution, Swept
from agent.protocol.wire import Identity
from agent.topology.podfiles import PodFacts

pytestmark = pytest.mark.timeout(10)


def _agent(peers: int, index: int) -> Agent:
    config = build_config(
        "wait",
        {"peers": str(peers), "index": str(index), "service": "svc", "namespace": "ns"},
        PodFacts(hostname=f"job-{index}"),
    )
    me = Identity("job", "", index, peers, 29300, f"{index:016x}")
    return Agent(config, me=me, now=0.0, rand=lambda: 0.5)


def _reports(effects: list[Effect]) -> list[str]:
    return [e.event.message for e in effects if isinstance(e, Report)]


def test_a_pod_restarted_after_its_peers_passed_is_told_within_seconds() -> None:
    """Its peers' pods are up (DNS lists them) but their agents have left: every probe is
    refused. The first progress line says so, instead of waiting silently for --timeout."""
    agent = _agent(3, 1)
    assert Query() in agent.begin(0.0)
    listed = ("10.0.0.1", "10.0.0.2", "10.0.0.3")
    probes = agent.handle(Swept(Resolution(listed)), 0.1)
    assert {p.address for p in probes if isinstance(p, Probe)} == set(listed)
    refused = ProbeResult("connect to port 29300: refused", cause=Cause.CONNECT_REFUSED)
    for address in ("10.0.0.1", "10.0.0.3"):
        agent.handle(AddressProbed(address, refused), 0.2)
    mine = ProbeResult(index=1, instance=f"{1:016x}")
    agent.handle(AddressProbed("10.0.0.2", mine), 0.2)
    [line] = _reports(agent.poll(PROGRESS_EVERY))
    assert "1/3 peers reached" in line
    assert "nobody listens on port 29300" in line and "only sidecar mode" in line
