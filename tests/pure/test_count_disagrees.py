"""A disagreement on the peer count aborts everyone with exit 4 whatever the probe: with one that
says no hello (``dns``, ``icmp``, ``tcp:PORT``) the misconfigured pod sees the others' count only
in its coordinator's hello, when it dials it (an outside review: it waited for a pod that does
not exist and exited 3 at its timeout). The pure core, event by event, and the in-memory
cluster; real processes in tests/faults/test_count_disagrees.py.
"""

from __future__ import annotations

import itertools

import pytest

from agent.config.parse import build_config
from agent.core.agent import Agent
from agent.core.answers import blind, dial_failed, identity_failure
from agent.core.causes import Cause, Failure
from agent.core.effects import Aborted, Dial, Effect, Fail
from agent.core.inputs import Attempted, Resolution, Unreached
from agent.errors import BarrierAborted
from agent.protocol.wire import Identity
from agent.topology.podfiles import PodFacts
from tests.sim.checks import BOUND, LINGER, assert_aborted, start
from tests.sim.cluster import Cluster

pytestmark = pytest.mark.timeout(60)

BLIND = ["dns", "icmp", "tcp:8080"]  # the probes whose answer names no pod and no count
COORDINATOR = "10.0.0.1"


def _member(probe: str) -> Agent:
    """Pod 2 of 4 (``--peers 4``) where the others say 3."""
    config = build_config(
        "wait",
        {"peers": "4", "index": "2", "service": "svc", "namespace": "ns", "probe": probe},
        PodFacts(hostname="job-2"),
    )
    me = Identity("job", "", 2, 4, 29300, f"{2:016x}")
    return Agent(config, me=me, now=0.0, rand=lambda: 0.5)


@pytest.mark.parametrize("probe", BLIND)
def test_a_member_whose_coordinator_disagrees_aborts(probe: str) -> None:
    """The dial's handshake met pod 0 with ``--peers 3``: the member aborts (as a probe that
    meets such a pod does), and leaves with BarrierAborted once the abort linger is over."""
    member = _member(probe)
    effects, now = member.begin(0.0), 0.0
    for index in range(3):  # pods 0-2 answer the probe; no pod 3 is in DNS
        address = f"10.0.0.{index + 1}"
        effects += member.handle(Attempted(index, blind(None), address, (address,)), now)
    effects += member.handle(Attempted(3, Unreached(Failure("NXDOMAIN", Cause.NXDOMAIN))), now)
    while not any(isinstance(e, Dial) for e in effects):  # as the DNS pace lets it
        now = member.next_wakeup()
        assert now < 5.0
        effects = member.poll(now)
    theirs = Identity("job", "", 0, 3, 29300, f"{0:016x}")
    failure = identity_failure(member.me, theirs, expected_index=0)
    assert failure is not None
    problem = f"{COORDINATOR}: {failure.reason}"
    failed = dial_failed(Resolution((COORDINATOR,)), [problem], (), [failure])
    effects = member.handle(failed, now)
    assert isinstance(member.verdict, Aborted), effects
    assert "peer count differs" in member.verdict.reason
    assert not any(isinstance(e, Dial) for e in _until(member, 60.0))  # no dial again
    assert member.finished


def _until(agent: Agent, end: float) -> list[Effect]:
    """Every effect the agent's own wake-ups give until it finishes or ``end``."""
    out: list[Effect] = []
    while not agent.finished and (now := agent.next_wakeup()) <= end:
        out += agent.poll(now)
    fails = [e for e in out if isinstance(e, Fail)]
    assert [type(f.error) for f in fails] == [BarrierAborted], out
    return out


MISMATCH = [
    pytest.param(order, odd, peers, id=f"order-{''.join(map(str, order))}-pod{odd}-says-{peers}")
    for order in itertools.permutations(range(3))
    for odd, peers in ((1, 4), (2, 4), (1, 2))
]


@pytest.mark.parametrize("probe", BLIND)
@pytest.mark.parametrize("order, odd, peers", MISMATCH)
def test_a_member_with_another_count_aborts_everyone(
    order: tuple[int, ...], odd: int, peers: int, probe: str
) -> None:
    """The review's case in the in-memory cluster, every start order: a member that says 4
    (it waits for a pod 3 no DNS lists), or 2 (it needs nobody past pod 1)."""
    c = Cluster(3, seed=odd, probe=probe)
    for k, index in enumerate(order):
        start(c, {index: 0.5 * k}, **({"peers": peers} if index == odd else {}))
    c.run_until(1.0 + BOUND + LINGER)
    assert_aborted(c, "peer count")
