"""``--reach`` and ``--reach-degree``: parsed, checked, and turned into the targets a pod
reaches (pure)."""

from __future__ import annotations

import pytest

from agent.config.model import ReachMode
from agent.config.parse import build_config
from agent.core.effects import Attempt, ProbeAddress, Sweep
from agent.core.graph import ReachGraph
from agent.core.inputs import Resolution
from agent.core.reach import Reach
from agent.core.targets import reach_graph, targets_of
from agent.errors import ConfigError
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
