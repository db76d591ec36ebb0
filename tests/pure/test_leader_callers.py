"""Pod I's exit barrier (``--exit-led-by I``) past a cut Service answer (``agent.core.callers``).

Outside review 10: past a Service answer cut short (more pods than one DNS message lists), the
pods it left out never heard the leader's end, dense or sparse, and their workloads ran on until
``--exit-timeout``: pod I's exit barrier found them neither in the answer nor from the
coordinator (a follower's exit barrier has not begun), asked none of their names, and on a
sparse graph its start barrier had reached only its few targets. Every pod's start barrier
probes pod I, so pod I heard each from its address: its exit barrier starts from those, and asks
by name (paced) for a pod it has no seed for or whose seed fails.
"""

from __future__ import annotations

import pytest

from agent.config.parse import build_config
from agent.core.agent import Agent
from agent.core.causes import Cause, Failure
from agent.core.effects import Effect, ProbeAddress, Sweep
from agent.core.inputs import AddressProbed, Contacted, Resolution, Swept, Unreached
from agent.core.seeded import Proven, proven_by
from agent.protocol.instance import instance_id
from agent.protocol.wire import EXIT_BARRIER, START_BARRIER, Hello, Identity, Role
from agent.topology.podfiles import PodFacts

pytestmark = pytest.mark.timeout(10)

PEERS, LEADER = 40, 5
#: what the cut answer lists (a Job too big for one DNS message)
LISTED = (0, 1)
NOT_BEGUN = Failure(
    "identity mismatch: the start barrier, expected barrier 'exit'", Cause.NOT_BEGUN
)


def _address(index: int) -> str:
    return f"198.18.0.{index + 1}"


def _instance(index: int, serial: int = 1) -> str:
    return instance_id(1000 + index, serial)


def _agent(index: int, barrier: str, seed: dict[int, Proven] | None = None) -> Agent:
    """Pod ``index`` of a sparse Job led by pod 5 (``run --exit-barrier --exit-led-by 5``)."""
    values = {"peers": str(PEERS), "index": str(index), "service": "svc", "namespace": "ns"}
    values |= {"reach": "sparse", "reach_degree": "4", "exit_barrier": "true"}
    values |= {"exit_led_by": str(LEADER), "job_uid": "uid"}
    config = build_config("run", values, PodFacts(hostname=f"job-{index}"))
    me = Identity("job", "uid", index, PEERS, 29300, _instance(index), barrier=barrier)
    return Agent(config, me=me, now=0.0, rand=lambda: 0.5, seed=seed)


def _hello(index: int, serial: int = 1, job: str = "job") -> Hello:
    """Pod ``index``'s start barrier probing pod I."""
    return Hello(
        Identity(job, "uid", index, PEERS, 29300, _instance(index, serial)), Role.MEMBER, "n"
    )


def _heard_by_the_leader() -> Agent:
    """Pod I's start barrier, every other pod's start barrier having said hello to it from its
    own address, which the cut answer does not list (so it never counted here)."""
    start = _agent(LEADER, START_BARRIER)
    start.begin(0.0)
    for index in range(PEERS):
        if index != LEADER:
            start.handle(Contacted(_hello(index), _address(index)), 0.1)
    return start


def _cut_answer(agent: Agent, now: float) -> list[Effect]:
    """The Service's answer, cut short: pods 0 and 1 only."""
    listed = tuple(_address(i) for i in LISTED)
    return agent.handle(Swept(Resolution(listed, truncated=True)), now)


def _probed(effects: list[Effect]) -> set[str]:
    return {e.address for e in effects if isinstance(e, ProbeAddress)}


def test_the_leaders_start_barrier_keeps_where_each_pod_said_hello_from() -> None:
    start = _heard_by_the_leader()
    assert start.callers is not None
    handed_on = proven_by(start.reach, start.callers.seeds)
    others = set(range(PEERS)) - {LEADER}
    assert others <= set(handed_on)
    assert all(handed_on[i] == Proven(_address(i), _instance(i)) for i in others)
    # another pod's start barrier, and the leader's exit barrier, keep nothing
    assert _agent(LEADER + 1, START_BARRIER).callers is None
    assert _agent(LEADER, EXIT_BARRIER).callers is None


def test_a_pod_claimed_from_two_places_or_by_another_run_is_no_seed() -> None:
    """An outsider claiming pod 7 from elsewhere gains nothing: the real pod 7 said hello too,
    so pod 7 is asked for by name, as without seeds; a hello of another run is never kept."""
    start = _heard_by_the_leader()
    start.handle(Contacted(_hello(7), "198.18.9.9"), 0.2)  # the same claim, elsewhere
    start.handle(Contacted(_hello(8, serial=2), _address(8)), 0.2)  # pod 8 restarted there
    start.handle(Contacted(_hello(9, job="other"), "198.18.9.10"), 0.2)
    assert start.callers is not None
    seeds = start.callers.seeds
    assert 7 not in seeds and 8 not in seeds
    assert seeds[9] == Proven(_address(9), _instance(9))
    from agent.core.callers import Callers  # (here: the module is the fix)

    callers = Callers(LEADER)
    callers.heard(LEADER, _address(LEADER), _instance(LEADER))  # its own: not a caller
    assert callers.seeds == {}


def test_the_leaders_exit_barrier_says_hello_to_every_pod_past_a_cut_answer() -> None:
    """The review's break: the end reaches the pods the cut answer leaves out, where they said
    hello from, without a DNS name asked; a pod answering from its start barrier (its workload
    still runs: it has not begun the exit barrier) keeps its seed and is tried there again."""
    start = _heard_by_the_leader()
    assert start.callers is not None
    exit_barrier = _agent(LEADER, EXIT_BARRIER, proven_by(start.reach, start.callers.seeds))
    effects = exit_barrier.begin(0.0)
    assert Sweep() in effects
    effects += _cut_answer(exit_barrier, 0.2)
    unlisted = set(range(PEERS)) - set(LISTED) - {LEADER}
    assert {_address(i) for i in unlisted} <= _probed(effects)
    # no name asked but its own and, as every pod past a cut, index 0 and its ring neighbour
    named = {i for i in range(PEERS) if exit_barrier.reach.is_scheduled(i)}
    assert named <= {LEADER, 0, LEADER + 1}
    exit_barrier.handle(AddressProbed(_address(7), Unreached(NOT_BEGUN)), 0.3)
    assert not exit_barrier.reach.is_scheduled(7)
    assert exit_barrier.seeded.vouches(7, _address(7))


def test_a_restarted_leader_asks_every_name_the_cut_answer_leaves_out() -> None:
    """A new process of pod I heard nobody's hello: each pod by name (paced), not only its
    coordinator and ring neighbour (the others' addresses would come from the coordinator,
    which vouches only for pods in the exit barrier: never, while their workloads run)."""
    exit_barrier = _agent(LEADER, EXIT_BARRIER, seed=None)
    exit_barrier.begin(0.0)
    _cut_answer(exit_barrier, 0.2)
    unlisted = set(range(PEERS)) - set(LISTED) - {LEADER}
    assert all(exit_barrier.reach.is_scheduled(i) for i in unlisted)


def test_a_seed_the_probe_refutes_is_asked_for_by_name() -> None:
    """Pod 7 gone from where it said hello (its pod replaced: a new address only DNS knows):
    refused there, or another pod answers there; its seed is dropped and its name asked."""
    start = _heard_by_the_leader()
    assert start.callers is not None
    exit_barrier = _agent(LEADER, EXIT_BARRIER, proven_by(start.reach, start.callers.seeds))
    exit_barrier.begin(0.0)
    _cut_answer(exit_barrier, 0.2)
    refused = Failure("connect: refused", Cause.CONNECT_REFUSED)
    exit_barrier.handle(AddressProbed(_address(7), Unreached(refused)), 0.3)
    assert exit_barrier.reach.is_scheduled(7)
    assert not exit_barrier.seeded.vouches(7, _address(7))
