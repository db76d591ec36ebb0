"""Every mode and every probe kind on the in-memory cluster of shipped cores (tests/sim/modes.py):
the start barrier, ``run --exit-barrier``'s exit barrier and a sidecar's named barriers, each an
instance of the core on one port per pod, a hello reaching the instance it names by the mux's
own rule (``agent.protocol.routing``)."""

from __future__ import annotations

import functools

import pytest

from agent.core.effects import Released
from agent.protocol.wire import EXIT_BARRIER, START_BARRIER, named_barrier
from tests.sim.checks import BOUND, start
from tests.sim.cluster import Cluster
from tests.sim.dns import View
from tests.sim.modes import MODES, ask

pytestmark = pytest.mark.timeout(60)

PROBES = ["tcp", "tcp:8080", "icmp", "dns"]
NAMES = ("data", "ckpt")


def _barriers(c: Cluster) -> list[str]:
    if c.mode == "exit":
        return [START_BARRIER, EXIT_BARRIER]
    if c.mode == "named":
        return [START_BARRIER, *(named_barrier(n) for n in c.names)]
    return [START_BARRIER]


def _all_released(c: Cluster, barrier: str) -> list[float]:
    """Every index's latest instance in ``barrier`` released; their release times."""
    current = c.current(barrier)
    assert sorted(current) == list(range(c.peers)), c.describe()
    assert all(isinstance(n.verdict, Released) for n in current.values()), c.describe()
    return [n.verdict_at or 0.0 for n in current.values()]


@pytest.mark.parametrize("probe", PROBES)
@pytest.mark.parametrize("mode", MODES)
def test_every_mode_passes_every_barrier_with_every_probe(mode: str, probe: str) -> None:
    """Four pods started apart pass the start barrier, then each later barrier of the mode; and
    none of a later barrier's pods is released before every pod has begun it (in ``exit``: no
    pod leaves before every pod's workload has ended)."""
    c = Cluster(4, seed=5, mode=mode, probe=probe, names=NAMES, workload=2.0)
    start(c, {0: 0.4, 1: 0.0, 2: 0.9, 3: 0.2})
    c.run_until(30.0)
    assert c.unsafe() == [], c.describe()
    assert max(_all_released(c, START_BARRIER)) <= 0.9 + BOUND, c.describe()
    for barrier in _barriers(c)[1:]:
        began = max(n.started_at for n in c.current(barrier).values())
        assert min(_all_released(c, barrier)) >= began, c.describe()
    if mode in ("wait", "run", "exit"):
        assert all(n.exited for n in c.current().values()), c.describe()


@pytest.mark.parametrize("probe", PROBES)
def test_a_pod_in_its_exit_barrier_meets_a_running_workload_as_a_stranger(probe: str) -> None:
    """Pod 1's workload runs 10 s, the others' 0.5 s. Their exit barrier's hellos reach pod 1's
    start barrier (the mux routes a hello for a barrier not begun to it), which answers as the
    start barrier: with ``tcp`` pod 1 is not reached (a probe that says no hello reaches it),
    and with every probe none of them leaves until pod 1's workload ends and its exit barrier
    arrives."""
    c = Cluster(3, seed=2, mode="exit", probe=probe)
    c.workloads.update({0: 0.5, 1: 10.0, 2: 0.5})
    start(c, {0: 0.0, 1: 0.0, 2: 0.0})
    c.run_until(8.0)
    early = c.current(EXIT_BARRIER)
    assert sorted(early) == [0, 2] and not any(n.verdict for n in early.values()), c.describe()
    if probe == "tcp":  # the others probe pod 1 (pod 1 itself only once its exit barrier runs)
        assert not any(n.reach.peers[1].reached for n in early.values()), c.describe()
    c.run_until(30.0)
    assert c.unsafe() == [], c.describe()
    ended = c.current(EXIT_BARRIER)[1].started_at
    assert min(_all_released(c, EXIT_BARRIER)) >= ended >= 10.0, c.describe()


@pytest.mark.parametrize("probe", PROBES)
@pytest.mark.parametrize("mode", ["sidecar", "named"])
def test_a_pod_restarted_after_the_release_is_told_it_passed(mode: str, probe: str) -> None:
    """A late joiner: pod 2's sidecar restarts (a new pod) long after everyone passed; it passes
    its start barrier at once, and so does each named barrier its clients ask for again: told
    that the barrier passed (with a probe that says no hello, views name no instance, so its
    arrival matches the view decided on and the coordinator's answer counts it)."""
    c = Cluster(3, seed=4, mode=mode, probe=probe, names=NAMES, workload=1.0)
    start(c, {0: 0.0, 1: 0.0, 2: 0.0})
    c.run_until(10.0)
    c.restart(2)
    c.run_until(25.0)
    assert c.unsafe() == [], c.describe()
    for barrier in _barriers(c):
        late = c.current(barrier)[2]
        assert late.started_at >= 10.0 and isinstance(late.verdict, Released), c.describe()
        assert probe != "tcp" or not late.counted, c.describe()  # told so, not counted again
        assert late.verdict_at is not None and late.verdict_at <= late.started_at + BOUND


def test_a_named_barrier_waits_for_every_pod_to_ask() -> None:
    """Named barriers over one port: pod 2's clients ask for ``ckpt`` 8 s after the others; the
    other pods' ``ckpt`` waits for it, their ``data`` does not."""
    c = Cluster(3, seed=6, mode="named", names=("data",), workload=1.0)
    start(c, {0: 0.0, 1: 0.0, 2: 0.0})
    c.run_until(5.0)
    for index, node in c.current().items():
        c.at(5.0 + (8.0 if index == 2 else 0.0), functools.partial(ask, node, "ckpt"))
    c.run_until(25.0)
    assert c.unsafe() == [], c.describe()
    assert max(_all_released(c, named_barrier("data"))) < 5.0, c.describe()
    assert min(_all_released(c, named_barrier("ckpt"))) >= 13.0, c.describe()
    # each began from where its start barrier reached every pod (agent.core.seeded), and kept
    # pod 2's seed while pod 2's start barrier answered for it: not begun there, not a stranger
    seeded = [len(n.agent.seeded) for n in c.nodes if n.me.barrier == named_barrier("ckpt")]
    assert seeded == [3, 3, 3], c.describe()


VIEWS = {
    "a replica 3 s behind": View(lag=3.0),
    "names before the Service": View(service_after=2.0),
    "the Service before names": View(name_after=2.0),
}


@pytest.mark.parametrize("probe", PROBES)
@pytest.mark.parametrize("view", list(VIEWS), ids=list(VIEWS))
@pytest.mark.parametrize("mode", ["wait", "sidecar", "exit"])
def test_a_pod_whose_dns_differs_passes_with_the_others(mode: str, view: str, probe: str) -> None:
    """The coordinator's resolver, and pod 1's, see DNS their own way; pod 2 is replaced at a
    new address before the release (a stale record lingers in the lagging view). Everyone
    passes once its own view lists the new pod."""
    views = {0: VIEWS[view], 1: VIEWS[view]}
    c = Cluster(3, seed=8, mode=mode, probe=probe, views=views, workload=1.0)
    start(c, {0: 0.0, 1: 0.0, 2: 0.0})
    c.at(0.0, lambda: c.restart(2))
    c.run_until(40.0)
    assert c.unsafe() == [], c.describe()
    for barrier in _barriers(c):
        _all_released(c, barrier)
    assert max(_all_released(c, START_BARRIER)) <= 0.05 + 3.0 + 2 * BOUND + 1.0, c.describe()


@pytest.mark.parametrize("probe", PROBES)
@pytest.mark.parametrize("mode", ["sidecar", "named"])
def test_a_coordinator_restarted_after_the_release_is_told_it_passed(mode: str, probe: str) -> None:
    """Pod 0's sidecar restarts long after everyone passed. Its members, released, never arrive
    again: it looks around, saying hello on the agent's port whatever ``--probe`` is (a probe
    that says no hello cannot carry the released flag), and passes at once as a late joiner.
    Found by the property schedules: with ``icmp``, ``dns`` or ``tcp:PORT`` the restarted
    coordinator waited for ever."""
    c = Cluster(3, seed=4, mode=mode, probe=probe, names=NAMES, workload=1.0)
    start(c, {0: 0.0, 1: 0.0, 2: 0.0})
    c.run_until(10.0)
    c.restart(0, new_pod=False)
    c.run_until(25.0)
    assert c.unsafe() == [], c.describe()
    for barrier in _barriers(c):
        late = c.current(barrier)[0]
        assert late.started_at >= 10.0 and isinstance(late.verdict, Released), c.describe()
        assert late.verdict_at is not None and late.verdict_at <= late.started_at + BOUND
