"""The schedules that must catch the mutants of tests/sim/mutants.py, and how a run is judged.

Each is a fixed schedule of the in-memory cluster (cluster.py) or a bounded run of the explorer
(explore.py), over the shipped core, judged only by the checker (tests/sim/safety.py, from the
network's record) and the liveness rule of tests/sim/test_barrier_properties.py (every index's
newest instance released within ``LIVE`` of the last fault). Every one passes on the shipped
core (tests/sim/test_mutants.py says so), so a mutant one of them flags was caught by its
mutation.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

from agent.core.timing import DEFAULT_TIMING
from tests.sim.cluster import CONNECT_TIMEOUT, KEEPALIVE, Cluster
from tests.sim.explore import Explorer
from tests.sim.node import Node, Pod

__all__ = ["LIVE", "SCENARIOS", "Scenario", "judge"]


@dataclass(frozen=True)
class Scenario:
    """One schedule: ``run`` plays it and returns what the checker finds (empty: all well)."""

    name: str
    run: Callable[[], list[str]]


#: after the last fault, every index's newest instance is released within this (as
#: tests/sim/test_barrier_properties.py's LIVE: a keepalive, a connect timeout, a redial)
LIVE = KEEPALIVE + CONNECT_TIMEOUT + 2.0


# --- judging a run --------------------------------------------------------------------------------
def judge(c: Cluster, faults_end: float) -> list[str]:
    """Safety from the record (``Cluster.unsafe``), and liveness from it: the newest instance of
    every index of the Job released by ``faults_end + LIVE``."""
    truth, problems = c.truth, c.unsafe()
    newest: dict[int, str] = {}
    for process in sorted(truth.processes.values(), key=lambda p: p.started):
        if process.job_pod:
            newest[process.index] = process.instance
    for index in range(c.peers):
        instance = newest.get(index)
        verdict = truth.verdicts.get(instance or "")
        if verdict is None or not verdict.released:
            problems.append(f"live: index {index}'s newest instance never released")
        elif truth.at(verdict.seq) > faults_end + LIVE:
            problems.append(f"live: index {index} released at {truth.at(verdict.seq):.3f}")
    return problems


def _played(c: Cluster, faults_end: float) -> list[str]:
    c.run_until(faults_end + LIVE + DEFAULT_TIMING.ack_linger + 5)
    return judge(c, faults_end)


def _started(n: int, mode: str, *, late: float = 0.0) -> Cluster:
    """N agents started at t = 0, the last one at ``late``."""
    c = Cluster(n, mode=mode)
    for index in range(n):
        c.at(late if index == n - 1 else 0.0, functools.partial(c.start, index))
    return c


def _lagging_dns(c: Cluster, viewer: int, index: int, since: float, until: float) -> None:
    """A CoreDNS replica behind the others: what ``viewer``'s agents ask does not list a pod of
    ``index`` started at or after ``since``, until ``until``."""
    tasks, asking = c.tasks, [False]

    def hidden(pod: Pod) -> bool:
        return asking[0] and pod.index == index and pod.published_at >= since and c.now < until

    resolve, sweep, attempt, lookup = tasks.resolve, tasks.sweep, tasks.attempt, tasks.lookup

    def as_viewer(fn: Callable[..., None]) -> Callable[..., None]:
        def wrapped(src: Node, *args: object, **kwargs: object) -> None:
            asking[0] = src.me.index == viewer
            try:
                fn(src, *args, **kwargs)
            finally:
                asking[0] = False

        return wrapped

    def published(pods: list[Pod]) -> list[Pod]:
        return [p for p in pods if not hidden(p)]

    def resolve_as(src: Node, at: int) -> list[Pod]:
        return published(resolve(src, at))

    # this run's Tasks only (the instance's attributes), as a per-pod view of DNS would be
    setattr(tasks, "resolve", resolve_as)  # noqa: B010
    setattr(tasks, "attempt", as_viewer(attempt))  # noqa: B010
    setattr(tasks, "lookup", as_viewer(lookup))  # noqa: B010
    original_pods = c.pods

    def sweep_as(src: Node) -> None:
        if src.me.index != viewer:
            return sweep(src)
        asking[0] = True
        c.pods = published(original_pods)
        try:
            sweep(src)
        finally:
            c.pods, asking[0] = original_pods, False

    setattr(tasks, "sweep", sweep_as)  # noqa: B010


def _replaced_cut_off(c: Cluster, index: int, other: int, *, at: float, until: float) -> None:
    """At ``at`` pod ``index`` is replaced by a new pod that cannot probe ``other`` until
    ``until``."""

    def replace() -> None:
        c.blocked.add((index, other))
        c.restart(index)

    c.at(at, replace)
    c.at(until, functools.partial(c.blocked.discard, (index, other)))


# --- the schedules --------------------------------------------------------------------------------
def crash_counted_after_fin() -> list[str]:
    """The issue's schedule: N = 3 sidecars, pod 2's session messages 2 s slow, pod 1 crashing
    with a clean FIN at t = 1.0 (back 3 s later): nobody may count pod 1's dead instance."""
    c = _started(3, "sidecar")
    c.slow[(2, 0)] = 2.0
    c.at(1.0, lambda: c.restart(1, gap=3.0))
    return _played(c, 4.0)


def slow_third_arrival() -> list[str]:
    """N = 3 in wait mode, pod 2's Arrive 2 s slow: the release waits for it."""
    c = _started(3, "wait")
    c.slow[(2, 0)] = 2.0
    return _played(c, 0.0)


def restart_while_arriving() -> list[str]:
    """N = 3 in wait mode, pod 2's Arrive 2 s slow, pod 1 restarted in place at t = 1.0: the
    old pod 1's arrival names the old view; the release must count the new instance."""
    c = _started(3, "wait")
    c.slow[(2, 0)] = 2.0
    c.at(1.0, lambda: c.restart(1, new_pod=False))
    return _played(c, 1.0)


def held_member_arrives_twice() -> list[str]:
    """N = 3 sidecars, pod 2 starting at t = 1.0; pod 1 replaced at t = 0.5 by a new pod that
    the coordinator's DNS replica lists only at t = 6.0; pod 2 restarts in place at t = 3.0, so
    the new pod 1 arrives twice on its held session: what counts, once DNS lists it, is its
    latest view."""
    c = _started(3, "sidecar", late=1.0)
    c.at(0.5, lambda: c.restart(1))
    c.at(3.0, lambda: c.restart(2, new_pod=False))
    _lagging_dns(c, 0, 1, since=0.4, until=6.0)
    return _played(c, 6.0)


def outsider_claims_a_member() -> list[str]:
    """N = 3, pod 2's Arrive slow; at t = 0.5 an agent in a pod the Service does not select
    claims index 1 and dials the coordinator: held, and pod 1's admitted session stays."""
    c = _started(3, "wait")
    c.slow[(2, 0)] = 2.0
    c.at(0.5, lambda: c.start(1, outsider=True))
    return _played(c, 0.5)


def outsider_disagrees() -> list[str]:
    """N = 3; at t = 0.05 an outsider claims index 2 with another peer count: nobody aborts."""
    c = _started(3, "wait")
    c.slow[(2, 0)] = 1.0
    c.at(0.05, lambda: c.start(2, outsider=True, peers=4))
    return _played(c, 0.05)


def late_joiner_partitioned() -> list[str]:
    """N = 3 sidecars; after the release pod 2 is replaced (new pod) and cannot probe pod 1
    for 3 s: it is told the barrier passed at once, and returns only once it reached pod 1."""
    c = _started(3, "sidecar")
    _replaced_cut_off(c, 2, 1, at=1.0, until=4.0)
    return _played(c, 4.0)


def late_coordinator_partitioned() -> list[str]:
    """The same for the coordinator: replaced after the release, it cannot probe pod 2 for 3 s
    while the members' hellos say the barrier passed."""
    c = _started(3, "sidecar")
    _replaced_cut_off(c, 0, 2, at=1.0, until=4.0)
    return _played(c, 4.0)


def nobody_reaches_pod_2() -> list[str]:
    """N = 3; for 3 s no probe reaches pod 2, its own included: no release before they do."""
    c = _started(3, "wait")
    for src in range(3):
        c.blocked.add((src, 2))
        c.at(3.0, functools.partial(c.blocked.discard, (src, 2)))
    return _played(c, 3.0)


def sparse(probe: str) -> Callable[[], list[str]]:
    """N = 12 on a sparse graph of degree 4 (``--reach sparse``), fault-free."""

    def run() -> list[str]:
        c = Cluster(12, mode="wait", degree=4, probe=probe)
        for index in range(12):
            c.at(0.0, functools.partial(c.start, index))
        return _played(c, 0.0)

    return run


def explorer(n: int, mode: str, restarts: int, states: int) -> Callable[[], list[str]]:
    """The exhaustive explorer (tests/sim/explore.py), its safety check after every move."""

    def run() -> list[str]:
        search = Explorer(n, mode=mode, restarts=restarts, depth=40, horizon=1.5)
        search.run(max_states=states)
        return search.problems

    return run


SCENARIOS = {
    s.name: s
    for s in [
        Scenario("crash-counted-after-fin", crash_counted_after_fin),
        Scenario("slow-third-arrival", slow_third_arrival),
        Scenario("restart-while-arriving", restart_while_arriving),
        Scenario("held-member-arrives-twice", held_member_arrives_twice),
        Scenario("outsider-claims-a-member", outsider_claims_a_member),
        Scenario("outsider-disagrees", outsider_disagrees),
        Scenario("late-joiner-partitioned", late_joiner_partitioned),
        Scenario("late-coordinator-partitioned", late_coordinator_partitioned),
        Scenario("nobody-reaches-pod-2", nobody_reaches_pod_2),
        Scenario("sparse-n12-tcp", sparse("tcp")),
        Scenario("sparse-n12-icmp", sparse("icmp")),
        Scenario("explore-n2-wait", explorer(2, "wait", 0, 300)),
        Scenario("explore-n2-restart-sidecar", explorer(2, "sidecar", 1, 300)),
    ]
}
