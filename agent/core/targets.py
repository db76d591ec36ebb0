"""Whom this pod probes: its neighbours on the graph of assigned edges, itself and index 0.

``--reach all`` (the default up to ``ALL_TO_ALL_MAX`` pods) is the complete graph: every pod
probes every pod. ``--reach sparse`` (the default above it) gives each pod ``--reach-degree``
neighbours (``agent.core.graph``), which it probes and which probe it: the edges a release
proves both ways (``agent.core.edgesums``). A pod also reaches itself (its own name must lead
to it) and index 0, the coordinator it holds its session with. Pure.
"""

from __future__ import annotations

from agent.config.model import Config, ReachMode
from agent.core.edgesums import EdgeSums, to_hex
from agent.core.graph import ALL_TO_ALL_MAX, ReachGraph, sparse_degree
from agent.core.reach import Reach
from agent.protocol.wire import Identity
from agent.values import value

__all__ = ["Targets", "arrival", "graph_key", "reach_graph", "targets_of"]


@value
class Targets:
    """Pod ``index``'s assigned edges (``neighbours``) and every index it reaches
    (``indices``: the neighbours, itself and the coordinator)."""

    index: int
    neighbours: tuple[int, ...]
    indices: frozenset[int]
    complete: bool


def graph_key(config: Config) -> bytes:
    """What the graph (and the edge sums) are keyed by: the Job's uid, which every pod of one
    run shares and a rerun does not; the Job's name when no uid is given."""
    return (config.job_uid or config.topology.job).encode()


def reach_graph(config: Config) -> ReachGraph:
    """The graph every pod of this Job computes alike from its size, key and degree."""
    n = config.topology.peers
    mode = config.reach or (ReachMode.SPARSE if n > ALL_TO_ALL_MAX else ReachMode.ALL)
    sparse = config.reach_degree or sparse_degree(n)
    degree = max(1, n - 1) if mode is ReachMode.ALL else sparse
    return ReachGraph(n, graph_key(config), degree)


def targets_of(config: Config, graph: ReachGraph | None = None) -> Targets | None:
    """This pod's targets, or None when it is not one of the peers (a launcher's one-sided
    wait reaches every listed pod)."""
    index = config.topology.index
    if index is None:
        return None
    graph = graph or reach_graph(config)
    neighbours = graph.neighbours(index)
    return Targets(index, neighbours, frozenset({*neighbours, index, 0}), graph.complete)


def arrival(config: Config, me: Identity, reach: Reach) -> tuple[str, str]:
    """What this pod arrives with once it has reached its targets: on the complete graph its
    view (the instance reached of every index) and no sums; on a sparse graph the sums ``A``
    and ``B`` of its assigned edges (``agent.core.edgesums``). With a probe that cannot tell
    instances apart both name indices alone, as the view does."""
    targets = targets_of(config)
    if targets is None or targets.complete:
        return reach.view(), ""
    sums, i = EdgeSums(graph_key(config)), targets.index
    seen = [(j, reach.peers[j].instance) for j in targets.neighbours]
    own = me.instance if config.probe.says_hello else ""
    return to_hex(sums.reached(i, seen)), to_hex(sums.owed(i, targets.neighbours, own))
