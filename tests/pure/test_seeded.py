"""A named barrier seeded with what the start barrier proved (``agent.core.seeded``).

At 100 sidecars past a cut Service answer (``--reach sparse``), every named barrier asked
cluster DNS for each of its targets' names afresh, every pod at once: 37 queries a pod where
its start barrier had asked 21, and DNS timed out for every pod. Seeded with the addresses its
start barrier reached, a named barrier tries each there first and asks DNS for no seeded peer;
only a seed that fails (refused, another instance, another pod) sends that peer back to DNS.
"""

from __future__ import annotations

import dataclasses

import pytest

from agent.config.parse import build_config
from agent.core.agent import Agent
from agent.core.answers import dial_failed, identity_failure
from agent.core.causes import Cause, Failure
from agent.core.effects import Attempt, Effect, Lookup
from agent.core.inputs import Attempted, Contacted, Reached, Resolution, Unreached
from agent.core.seeded import Proven, Seeded, proven_by
from agent.protocol.instance import instance_id
from agent.protocol.wire import Hello, Identity, Role, named_barrier
from agent.topology.podfiles import PodFacts

pytestmark = pytest.mark.timeout(10)

PEERS, ME = 12, 5
NAMED = named_barrier("dataset")


def _address(index: int) -> str:
    return f"10.0.0.{index + 1}"


def _instance(index: int) -> str:
    return instance_id(index, 0)


def _agent(seed: dict[int, Proven] | None) -> Agent:
    """Pod 5 of 12 on a sparse graph (every target asked for by name), in barrier ``dataset``."""
    values = {"peers": str(PEERS), "index": str(ME), "service": "svc", "namespace": "ns"}
    config = build_config("sidecar", {**values, "reach": "sparse"}, PodFacts(hostname="job-5"))
    me = Identity("job", "", ME, PEERS, 29300, _instance(ME), barrier=NAMED)
    return Agent(config, me=me, now=0.0, rand=lambda: 0.5, seed=seed)


def _proven(agent: Agent) -> dict[int, Proven]:
    """What the start barrier of the same pod proved: every target at its address."""
    return {i: Proven(_address(i), _instance(i)) for i in agent.reach.targets}


def _attempts(effects: list[Effect]) -> dict[int, Attempt]:
    return {e.index: e for e in effects if isinstance(e, Attempt)}


def _asks_dns(effects: list[Effect]) -> set[int]:
    """The peers whose names these effects ask DNS for."""
    named = {e.index for e in effects if isinstance(e, Attempt) and not e.addresses}
    return named | {e.index for e in effects if isinstance(e, Lookup)}


def _seeded_agent() -> tuple[Agent, dict[int, Proven]]:
    proven = _proven(_agent(None))
    return _agent(proven), proven


def test_a_seeded_named_barrier_asks_no_dns_for_its_proven_peers() -> None:
    unseeded = _agent(None)
    assert _asks_dns(unseeded.begin(0.0))  # found afresh: its targets by name
    agent, proven = _seeded_agent()
    effects = agent.begin(0.0)
    attempts = _attempts(effects)
    assert set(attempts) == set(proven) and not _asks_dns(effects)
    for index, attempt in attempts.items():
        assert attempt.addresses == (_address(index),)
        assert attempt.instance == _instance(index)  # only the process proven counts there
    for index in proven:
        reached = Reached(index=index, instance=_instance(index))
        effects = agent.handle(Attempted(index, reached, _address(index), (_address(index),)), 0.1)
        assert not _asks_dns(effects)
    assert agent.reach.done


def _next_attempt(agent: Agent, index: int, now: float) -> Attempt:
    effects = agent.poll(now)
    assert index in _attempts(effects), effects
    return _attempts(effects)[index]


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param(Failure("connect: refused", Cause.CONNECT_REFUSED), id="refused"),
        pytest.param(Failure("another instance answers", Cause.OTHER_INSTANCE), id="restarted"),
        pytest.param(Failure("identity mismatch: job uid x", Cause.STRANGER), id="another-job"),
    ],
)
def test_a_peer_whose_seeded_address_fails_is_asked_for_by_name(failure: Failure) -> None:
    agent, proven = _seeded_agent()
    peer = min(i for i in proven if i != ME)
    assert _attempts(agent.begin(0.0))[peer].addresses == (_address(peer),)
    refused_at = (_address(peer),) if failure.cause is Cause.CONNECT_REFUSED else ()
    event = Attempted(peer, Unreached(failure), addresses=(_address(peer),), refused_at=refused_at)
    agent.handle(event, 0.1)
    again = _next_attempt(agent, peer, 5.0)
    # a pod that restarted has a new address: only DNS gives it (not the refused one reused)
    assert again.addresses == () and again.instance == ""
    # and the seed no longer vouches for that address
    assert not agent.vouching.vouches(peer, _address(peer))


def test_a_peer_that_has_not_begun_the_barrier_is_tried_at_its_seed_again() -> None:
    """Its start barrier answers for it (its client has not asked yet): the pod is there."""
    agent, proven = _seeded_agent()
    peer = min(i for i in proven if i != ME)
    agent.begin(0.0)
    failure = Failure("identity mismatch: the start barrier", Cause.NOT_BEGUN)
    agent.handle(Attempted(peer, Unreached(failure), addresses=(_address(peer),)), 0.1)
    assert _next_attempt(agent, peer, 5.0).addresses == (_address(peer),)


def test_a_seed_vouches_for_its_index_only() -> None:
    """Admission holds: a contact from a seeded address counts for the index proven there."""
    agent, proven = _seeded_agent()
    peer = min(i for i in proven if i != ME)
    assert agent.vouching.vouches(peer, _address(peer))
    assert not agent.vouching.vouches(peer + 1, _address(peer))
    assert not _agent(None).vouching.vouches(peer, _address(peer))


def test_a_pod_answering_from_a_barrier_it_has_not_begun_is_not_a_stranger() -> None:
    mine = Identity("job", "uid", 1, 4, 29300, _instance(1), barrier=NAMED)
    theirs = dataclasses.replace(mine, index=2, instance=_instance(2), barrier="")
    failure = identity_failure(mine, theirs, expected_index=2)
    assert failure is not None and failure.cause is Cause.NOT_BEGUN
    other_run = dataclasses.replace(theirs, uid="other")
    failure = identity_failure(mine, other_run, expected_index=2)
    assert failure is not None and failure.cause is Cause.STRANGER
    other_index = identity_failure(mine, theirs, expected_index=3)
    assert other_index is not None and other_index.cause is Cause.STRANGER


def test_a_coordinators_seed_is_dialled_until_it_fails_otherwise_than_not_begun() -> None:
    seeded = Seeded({0: Proven(_address(0), _instance(0))})
    not_begun = Failure("identity mismatch: the start barrier", Cause.NOT_BEGUN)
    resolution = Resolution((_address(0),))
    assert not seeded.dial_failed(0, dial_failed(resolution, ["x"], handshakes=[not_begun]))
    assert seeded.dial_at(0) == (_address(0),)
    refused = dial_failed(resolution, ["refused"], [Cause.CONNECT_REFUSED])
    assert seeded.dial_failed(0, refused) and seeded.dial_at(0) == ()


def _newer(index: int) -> str:
    """The instance of pod ``index`` that replaced the one proven (started later)."""
    return instance_id(1_000 + index, 0)


def test_a_pod_replaced_after_the_start_barrier_is_not_seeded() -> None:
    """Review 11: the start barrier, released, still hears hellos; a peer's newer instance heard
    there means the old one (still up while it terminates, at its old address) is not the pod:
    the next barrier asks its name instead of counting the old instance at the seed."""
    start = _agent(None)
    start.begin(0.0)
    peer, other = sorted(i for i in start.reach.targets if i != ME)[:2]
    for index in (peer, other):
        reached = Reached(index=index, instance=_instance(index))
        start.handle(Attempted(index, reached, _address(index), (_address(index),)), 0.1)
    assert set(proven_by(start.reach)) == {peer, other}
    start.reach.note_instance(peer, _newer(peer))  # its replacement said hello
    assert set(proven_by(start.reach)) == {other}


def test_a_seeded_peer_heard_of_as_a_newer_instance_is_asked_for_by_name() -> None:
    """Reached at its seed as the instance proven, then replaced (its new instance says hello
    from the address DNS now gives): asked for by name, not tried at the old address again."""
    agent, proven = _seeded_agent()
    peer = min(i for i in proven if i != ME)
    agent.begin(0.0)
    reached = Reached(index=peer, instance=_instance(peer))
    agent.handle(Attempted(peer, reached, _address(peer), (_address(peer),)), 0.1)
    identity = Identity("job", "", peer, PEERS, 29300, _newer(peer), barrier=NAMED)
    hello = Hello(identity, Role.PROBE, "ab" * 16)
    agent.handle(Contacted(hello, "10.0.1.99", listed=True), 0.2)
    again = _next_attempt(agent, peer, 5.0)
    assert again.addresses == () and again.instance == ""
    assert not agent.vouching.vouches(peer, _address(peer))
