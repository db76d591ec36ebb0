"""``--reach`` and ``--reach-degree``: parsed, checked, and turned into the targets a pod
reaches (pure)."""

from __future__ import annotations

import pytest

from agent.config.model import ReachMode
from agent.config.parse import build_config
from agent.core.effects import Attempt, ProbeAddress, Sweep
from agent.core.graph import ReachGraph
from agent.core.inputs import Resolution
from agent.core.reach import PeerStates, Reach
from agent.core.targets import reach_graph, targets_of
from agent.errors import ConfigError
from agent.protocol.wire import EXIT_BARRIER
from agent.topology.podfiles import PodFacts

pytestmark = pytest.mark.timeout(10)

HOSTS = "10.244.1.7\tjob-1.svc-a.ns.svc.cluster.local\tjob-1\n"
POD = PodFacts(hostname="job-1", hosts=HOSTS)


@pytest.mark.parametrize(
    ("peers", "values", "complete", "degree"),
    [
        pytest.param(256, {}, True, 255, id="all-up-to-256"),
        pytest.param(257, {}, False, 18, id="sparse-above"),
        pytest.param(5000, {}, False, 24, id="capped-at-24"),
        pytest.param(300, {"reach": "all"}, True, 299, id="all-asked"),
        pytest.param(64, {"reach": "sparse"}, False, 12, id="sparse-asked"),
        pytest.param(64, {"reach": "sparse", "reach_degree": "8"}, False, 8, id="degree-asked"),
        pytest.param(5, {"reach": "sparse", "reach_degree": "8"}, True, 8, id="degree-covers-all"),
        pytest.param(12, {"reach_degree": "4"}, False, 4, id="a-degree-alone-asks-for-sparse"),
    ],
)
def test_the_mode_and_degree_follow_the_size_unless_asked(
    peers: int, values: dict[str, str], complete: bool, degree: int
) -> None:
    config = build_config("wait", {"peers": str(peers), "index": "1", **values}, POD)
    graph = reach_graph(config)
    assert (graph.complete, graph.degree) == (complete, degree)


def test_flags_and_variables_are_parsed() -> None:
    config = build_config("wait", {"peers": "64", "index": "1", "reach": "sparse"}, POD)
    assert config.reach is ReachMode.SPARSE and config.reach_degree is None
    config = build_config("wait", {"peers": "64", "index": "1", "reach_degree": "6"}, POD)
    assert config.reach is None and config.reach_degree == 6


def test_every_reach_problem_names_its_flag_and_variable_at_once() -> None:
    with pytest.raises(ConfigError) as info:
        build_config(
            "wait", {"peers": "64", "index": "1", "reach": "some", "reach_degree": "1"}, POD
        )
    assert list(info.value.problems) == [
        "--reach / PEER_AGENT_REACH: unknown reach 'some' (use all or sparse)",
        "--reach-degree / PEER_AGENT_REACH_DEGREE: not a degree: '1' (a whole number, 2 or more)",
    ]
    with pytest.raises(ConfigError) as info:
        build_config(
            "wait", {"peers": "64", "index": "1", "reach": "all", "reach_degree": "8"}, POD
        )
    assert list(info.value.problems) == [
        "--reach-degree / PEER_AGENT_REACH_DEGREE: only with --reach sparse: with all, every pod "
        "is probed"
    ]


def test_a_pod_targets_its_neighbours_itself_and_the_coordinator() -> None:
    config = build_config("wait", {"peers": "1000", "index": "1"}, POD)
    targets = targets_of(config)
    assert targets is not None and not targets.complete
    graph = ReachGraph(1000, config.job_uid.encode() or b"job", 20)
    assert targets.neighbours == graph.neighbours(1)
    assert targets.indices == {*graph.neighbours(1), 0, 1}
    assert len(targets.indices) <= 22


def test_reach_is_done_when_its_targets_are_reached_and_counts_no_other() -> None:
    reach = Reach(100, now=0.0, rand=lambda: 0.5, targets={0, 5, 7})
    assert reach.start_due(0.0) == [0, 5, 7]  # nobody else is attempted
    reach.succeeded(42, "10.0.0.42", 0.1, lands=False)  # not a target: not counted
    assert not reach.peers[42].reached
    reach.succeeded(0, "10.0.0.1", 0.1)
    reach.succeeded(5, "10.0.0.5", 0.1)
    assert [p.index for p in reach.missing()] == [7] and not reach.done
    reach.schedule([42, 43])  # a cut answer's left-outs: only targets are asked for
    assert not reach.is_scheduled(42)
    reach.succeeded(7, "10.0.0.7", 0.2)
    assert reach.done


def test_on_a_sparse_graph_a_pod_asks_its_targets_by_name_and_probes_no_sweep() -> None:
    from agent.core.discovery import discovery_for
    from agent.core.timing import DEFAULT_TIMING

    config = build_config("wait", {"peers": "1000", "index": "1"}, POD)
    discovery = discovery_for(
        config, now=0.0, rand=lambda: 0.5, timing=DEFAULT_TIMING, max_in_flight=256
    )
    targets = targets_of(config)
    assert targets is not None
    assert discovery.reach.start_due(0.0) == sorted(targets.indices)
    assert discovery.take_due(0.0) == [Sweep()]  # the Service's answer: whose addresses count
    every = tuple(f"10.0.{i // 250}.{i % 250}" for i in range(1000))
    effects = discovery.answered(Resolution(addresses=every), 0.1)
    assert not [e for e in effects if isinstance(e, ProbeAddress)]
    assert discovery.lists("10.0.3.9")
    assert discovery.heard_from(999 if 999 not in targets.indices else 500, "10.0.3.9", 0.2) == []
    assert not any(isinstance(e, Attempt) for e in discovery.take_ask_by_name())


def test_a_pod_keeps_a_state_per_target_not_per_pod_of_the_job() -> None:
    """A pod of a 100,000-pod Job with three targets keeps three states; of another pod it
    keeps only the newest instance heard of, and forgets the first heard of past its bound."""
    reach = Reach(100_000, now=0.0, rand=lambda: 0.5, targets={0, 5, 7})
    assert [p.index for p in reach.peers] == [0, 5, 7]
    reach.note_instance(42, "0000000000000002-00000000")
    assert reach.stale(42, "0000000000000001-00000000")  # an older instance of 42 is stale
    assert not reach.peers[42].reached and not reach.is_target(42)
    states = PeerStates((0,), 0.0, heard_of=2)
    for index in (1, 2, 3):
        states.heard(index, f"i{index}")
    assert [states[i].newest for i in (1, 2, 3)] == ["", "i2", "i3"]


@pytest.mark.parametrize("leader", [0, 500])
def test_with_a_leader_every_start_barrier_reaches_it_and_its_exit_barrier_every_pod(
    leader: int,
) -> None:
    """``--exit-led-by``: only as a pod's start barrier reached the leader may the leader's
    end stop its workload (``agent.core.exitlead``), and only a pod the leader's exit barrier
    says hello to hears of that end. On a sparse graph neither was so beyond the leader's
    neighbours and the coordinators: the leader is every pod's target in the start barrier,
    and every pod the leader's target in its exit barrier, where it sweeps the Service's
    answer rather than ask 1,000 names."""
    from agent.core.discovery import discovery_for
    from agent.core.timing import DEFAULT_TIMING

    run = {"peers": "1000", "exit_barrier": "true", "exit_led_by": str(leader)}
    for index in (1, 777):
        config = build_config("run", {**run, "index": str(index)}, _pod(index))
        start, end = targets_of(config), targets_of(config, barrier=EXIT_BARRIER)
        assert start is not None and end is not None and not start.complete
        assert leader in start.indices and len(end.indices) <= 22
    led = build_config("run", {**run, "index": str(leader)}, _pod(leader))
    end = targets_of(led, barrier=EXIT_BARRIER)
    assert end is not None and end.indices == set(range(1000))
    start = targets_of(led)
    assert start is not None and len(start.indices) <= 22  # its start barrier: as before
    sweeping = discovery_for(
        led, EXIT_BARRIER, now=0.0, rand=lambda: 0.5, timing=DEFAULT_TIMING, max_in_flight=256
    )
    assert sweeping.reach.start_due(0.0) == [leader]  # its own name; the rest from the sweep


def test_a_sparse_pod_whose_targets_happen_to_be_every_pod_still_asks_their_names() -> None:
    """Only a leader's exit barrier sweeps on a sparse graph: pod 3 of 6 at degree 4 targets
    every pod by chance (its ring 1, 2, 4, 5 and the root 0), and asks names as before."""
    config = build_config("run", {"peers": "6", "reach_degree": "4", "index": "3"}, _pod(3))
    targets = targets_of(config, barrier=EXIT_BARRIER)
    assert targets is not None and targets.indices == set(range(6)) and not targets.sweeps


def _pod(index: int) -> PodFacts:
    name = f"job-{index}"
    return PodFacts(hostname=name, hosts=f"10.244.1.7\t{name}.svc-a.ns.svc.cluster.local\t{name}\n")
