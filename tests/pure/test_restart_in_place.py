"""A peer restarted in place, its old process's last answer heard after its new one's hello,
over the pure core: the sighting of the new instance is not answered by the old one.

Pod 5 of 6 on a sparse graph (degree 4: its ring neighbours 3, 4, 0 and 1) asks index 0 by
name. Pod 0 is replaced in place (the same address) as the attempt goes out: the new instance's
hello comes first, from an address this pod's DNS does not list yet (a sighting, dormant while
index 0 is unreached), then the attempt's answer, the old process's last. The sighting named a
newer instance than the one that answered, so it wakes and is checked: the name gave the
address, so the address is probed again and what answers there now (the new instance) counts.
Taking it as answered left pod 5's arrival naming the old instance for ever, and nobody was
released (tests/sim/test_sparse.py's example). Events in, effects out, on a hand-held clock.
"""

from __future__ import annotations

import pytest

from agent.config.parse import build_config
from agent.core.agent import Agent
from agent.core.effects import Attempt, Effect, ProbeAddress, Report
from agent.core.inputs import AddressProbed, Attempted, Contacted, Reached
from agent.protocol.instance import instance_id
from agent.protocol.wire import Hello, Identity, Role
from agent.topology.podfiles import PodFacts

pytestmark = pytest.mark.timeout(20)

PEERS, ME, PEER, AT = 6, 5, 0, "10.0.0.10"  # pod 0 keeps its address across the restart


def _identity(index: int, serial: int) -> Identity:
    return Identity("job", "", index, PEERS, 29300, instance_id(serial, index))


def _agent() -> Agent:
    values = {
        "peers": str(PEERS),
        "index": str(ME),
        "service": "svc",
        "namespace": "ns",
        "reach": "sparse",
        "reach_degree": "4",
    }
    config = build_config("wait", values, PodFacts(hostname=f"job-{ME}"))
    return Agent(config, me=_identity(ME, 1), now=0.0, rand=lambda: 0.5)


def _lines(effects: list[Effect]) -> list[str]:
    return [e.line.message for e in effects if isinstance(e, Report)]


def _attempted(instance_of: int, serial: int) -> Attempted:
    reached = Reached(instance_of, _identity(instance_of, serial).instance)
    return Attempted(instance_of, reached, AT, (AT,))


@pytest.mark.parametrize(
    ("heard", "looked_again"),
    [
        pytest.param(2, True, id="new-instance-heard-first"),
        pytest.param(1, False, id="its-own-instance-heard-first"),
    ],
)
def test_an_old_answer_does_not_answer_a_newer_instance_sighted_there(
    heard: int, looked_again: bool
) -> None:
    agent = _agent()
    begun = agent.begin(0.0)
    assert Attempt(PEER) in begun  # a target: asked by name
    agent.handle(Contacted(Hello(_identity(PEER, heard), Role.PROBE, "n"), AT), 0.0005)
    effects = agent.handle(_attempted(PEER, 1), 0.002)  # the old process's last answer
    assert agent.reach.peers[PEER].instance == _identity(PEER, 1).instance
    # DNS gave the address for index 0's name: the sighting is checked at once, or answered
    assert (ProbeAddress(AT, pushed=True) in effects) is looked_again
    if looked_again:
        new = _identity(PEER, 2).instance
        answer = agent.handle(AddressProbed(AT, Reached(PEER, new)), 0.01)
        assert any("restarted" in line for line in _lines(answer)), _lines(answer)
        assert agent.reach.peers[PEER].instance == new and agent.reach.newest_at(PEER) == (AT,)
