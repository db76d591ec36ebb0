"""Whom this pod probes: its neighbours on the graph of assigned edges, itself and its coordinator.

``--reach all`` (the default up to ``ALL_TO_ALL_MAX`` pods) is the complete graph: every pod
probes every pod. ``--reach sparse`` (the default above it) gives each pod ``--reach-degree``
neighbours (``agent.core.graph``), which it probes and which probe it: the edges a release
proves both ways (``agent.core.edgesums``). A pod also reaches itself (its own name must lead
to it) and its coordinator, the pod it holds its session with (index 0, or its group's in
the tree of coordinators, ``agent.core.groups``). Pure.

With ``--exit-led-by I`` the leader's end must reach every pod, and may stop a workload only
from the leader as that pod's start barrier reached it (``agent.core.exitlead``): so every
pod's start barrier also reaches pod I, and pod I's exit barrier reaches every pod (its hello
carries the end). On the complete graph both are so already.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from agent.config.model import Config, ReachMode
from agent.core.edgesums import EdgeSums, to_hex
from agent.core.graph import ALL_TO_ALL_MAX, ReachGraph, sparse_degree
from agent.core.groups import Tree
from agent.core.reach import Reach
from agent.protocol.wire import EXIT_BARRIER, START_BARRIER, Identity
from agent.values import value

__all__ = ["Targets", "arrival", "graph_key", "leads", "reach_graph", "targets_of"]


@value
class Targets:
    """Pod ``index``'s assigned edges (``neighbours``) and every index it reaches
    (``indices``: the neighbours, itself and the coordinator). ``sweeps``: it reaches every
    pod by design (the complete graph, a leader's exit barrier), so it probes what the
    Service's answer lists rather than ask each name."""

    index: int
    neighbours: tuple[int, ...]
    indices: frozenset[int]
    complete: bool
    sweeps: bool = False


def graph_key(config: Config) -> bytes:
    """What the graph (and the edge sums) are keyed by: the Job's uid, which every pod of one
    run shares and a rerun does not; the Job's name when no uid is given."""
    return (config.job_uid or config.topology.job).encode()


def reach_graph(config: Config) -> ReachGraph:
    """The graph every pod of this Job computes alike from its size, key and degree."""
    n = config.topology.peers
    # a degree asked for without a mode asks for a sparse graph, at any size
    sparse = n > ALL_TO_ALL_MAX or config.reach_degree is not None
    mode = config.reach or (ReachMode.SPARSE if sparse else ReachMode.ALL)
    chosen = config.reach_degree or sparse_degree(n)
    degree = max(1, n - 1) if mode is ReachMode.ALL else chosen
    return _graph(n, graph_key(config), degree)


@functools.lru_cache(maxsize=4)
def _graph(n: int, key: bytes, degree: int) -> ReachGraph:
    """One graph per (size, key, degree) in a process: it is immutable, and deriving its round
    keys (a BLAKE2b call per ring) again for each barrier instance, or for each of 100,000
    cores in the in-memory cluster, would be the same work again."""
    return ReachGraph(n, key, degree)


def targets_of(
    config: Config, graph: ReachGraph | None = None, *, barrier: str = START_BARRIER
) -> Targets | None:
    """This pod's targets in ``barrier`` (the start barrier's or ``run --exit-barrier``'s
    second), or None when it is not one of the peers (a launcher's one-sided wait reaches
    every listed pod)."""
    index = config.topology.index
    if index is None:
        return None
    graph = graph or reach_graph(config)
    neighbours = graph.neighbours(index)
    parent = Tree.of(graph.n, flat=graph.complete).parent(index)
    led = _led(config.exit_led_by, index, barrier, graph.n)
    indices = frozenset({*neighbours, index, parent, *led})
    # by design, not by chance: a sparse pod whose few targets happen to be every pod of a
    # small Job still asks their names, as every sparse pod does
    sweeps = graph.complete or len(led) == graph.n
    return Targets(index, neighbours, indices, graph.complete, sweeps)


def _led(leader: int | None, index: int, barrier: str, n: int) -> Sequence[int]:
    """What ``--exit-led-by`` adds: the leader, to every pod's start barrier (only as that
    barrier reached it may the leader's end stop this pod's workload); every pod, to the
    leader's exit barrier (a pod that is neither its neighbour nor a coordinator would never
    hear of the end). Another pod's exit barrier needs neither."""
    if leader is None:
        return ()
    if barrier == START_BARRIER:
        return (leader,)
    return range(n) if barrier == EXIT_BARRIER and index == leader else ()


def leads(config: Config, me: Identity) -> bool:
    """Whether ``me`` is pod I's, with ``--exit-led-by I`` and a probe that says hello (what
    carries the end): its start barrier keeps who said hello (``agent.core.callers``), its exit
    barrier starts from them (``agent.core.seeded``)."""
    return config.exit_led_by == me.index and config.probe.says_hello


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
