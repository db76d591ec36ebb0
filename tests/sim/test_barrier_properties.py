"""Properties of the barrier over random schedules of the in-memory cluster (N from 1 to 8).

A schedule draws start times, restarts (same pod or new pod, closed or half-open, after a gap;
in ``wait``, ``run`` and ``exit`` modes only before that agent's release, as an init container
that exited is not run again), overlapping instances of any pod, the coordinator's included
(sidecar modes), session resets, probe partitions, per-message delays and message drops (a
dropped message takes its connection with it, as on TCP), DNS publication delays, and outsiders
(an agent in a pod the Service does not select, claiming an index, agreeing or disagreeing on the
peer count). And the mode (``wait``, ``run``, ``sidecar``, ``exit`` = ``run --exit-barrier``,
``named`` = a sidecar with named barriers: tests/sim/modes.py), the probe kind (``tcp``,
``tcp:PORT``, ``icmp``, ``dns``), each pod's DNS view (a replica behind, a name listed before or
after the Service: tests/sim/dns.py), how far clocks are off (instance ids: start time, random
tie-break), how long workloads run or clients take to ask, and the workloads' exit codes.
Faults end at F: the last start, crash, reset, dropped message or partition healed.

**Safety**, on every schedule, at instance level (tests/sim/safety.py, from the network's record
alone): every instance released was counted in a coordinator's decision (every other instance it
counted had arrived with its view on a session still live there, and had heard every counted
instance's hello), or is a late joiner released after a decision once it had itself reached
every index. Also: a coordinator leaves only once every member's Ack
was delivered to it or its linger bound passed, and no core ever asks to be woken in the past.

**Liveness**, once faults stop: every index's latest instance (its latest agent process's, not
the one started last: tests/sim/liveness.py) is Released by ``F + LIVE`` (a keepalive, a connect
timeout, the backoff cap and round trips), and has left ``_run`` (exited in ``wait`` mode, ready
in ``sidecar`` mode) within the coordinator's linger after that. In ``wait`` mode a coordinator
does not wait for ever: liveness is claimed when faults stop early enough after the first
release (``LINGER - SETTLE``) for a member cut off at the release to redial it.
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from agent.protocol.wire import EXIT_BARRIER, Message, named_barrier
from tests.sim.cluster import Cluster, Fate, Node
from tests.sim.dns import View
from tests.sim.liveness import LINGER, LIVE, claimed, released
from tests.sim.modes import MODES
from tests.support.budget import budget


@dataclass(frozen=True)
class Fault:
    #: "restart"; "overlap" (a replacement starts while the old pod is still terminating);
    #: "reset" (the sessions of index die); "partition" (index cannot probe or dial other)
    kind: str
    at: float
    index: int
    other: int
    span: float  # restart: the gap before it is back; overlap, partition: how long it lasts
    half_open: bool
    new_pod: bool


@dataclass(frozen=True)
class Schedule:
    n: int
    mode: str
    seed: int
    starts: tuple[float, ...]
    faults: tuple[Fault, ...]
    drop: float  # probability that a message kills its session, until F
    delay: float  # the longest one-way delay
    dns_delay: float
    probe: str = "tcp"  # every pod's --probe
    #: each pod's resolver, by index: (lag, own name after, Service after), tests/sim/dns.py
    views: tuple[tuple[float, float, float], ...] = ()
    clock_skew: float = 0.0  # how far a pod's clock may be off: its instances' start times
    names: tuple[str, ...] = ()  # ``named``: the barriers each pod's clients ask for
    workload: float = 0.0  # ``run``, ``exit``: the longest workload; ``named``: the latest ask
    exit_codes: tuple[int, ...] = ()  # ``exit``: each pod's workload's code
    degree: int | None = None  # ``--reach sparse --reach-degree``; None: ``--reach all``

    @property
    def dns_lag(self) -> float:
        """How much later than its publication the slowest view lists a pod."""
        return max((lag + max(name, service) for lag, name, service in self.views), default=0.0)


def seconds(low: float, high: float) -> st.SearchStrategy[float]:
    return st.integers(int(low * 1000), int(high * 1000)).map(lambda ms: ms / 1000)


FAULTS = ("restart", "reset", "partition", "outsider")
PROBES = ("tcp", "tcp:8080", "icmp", "dns")
#: (lag, own name after, Service after): in step, a replica behind, a name listed before the
#: Service, the Service before a name
VIEWS = ((0.0, 0.0, 0.0), (1.5, 0.0, 0.0), (0.0, 0.0, 1.0), (0.0, 1.0, 0.0))


@st.composite
def schedules(
    draw: st.DrawFn, kinds: tuple[str, ...] = FAULTS, modes: tuple[str, ...] = MODES
) -> Schedule:
    n = draw(st.integers(1, 8))
    starts = tuple(draw(st.lists(seconds(0, 5), min_size=n, max_size=n)))
    index = st.integers(0, n - 1)
    fault = st.builds(
        Fault,
        kind=st.sampled_from(kinds),
        at=seconds(0, max(starts) + 4),
        index=index,
        other=index,
        span=seconds(0, 2),
        half_open=st.booleans(),
        new_pod=st.booleans(),
    )
    mode = draw(st.sampled_from(modes))
    return Schedule(
        n=n,
        mode=mode,
        seed=draw(st.integers(0, 2**16)),
        starts=starts,
        faults=tuple(draw(st.lists(fault, max_size=5))),
        drop=draw(st.sampled_from([0.0, 0.02, 0.1])),
        delay=draw(st.sampled_from([0.001, 0.02, 0.2])),
        dns_delay=draw(st.sampled_from([0.0, 0.5])),
        probe=draw(st.sampled_from(PROBES)),
        views=tuple(draw(st.lists(st.sampled_from(VIEWS), min_size=n, max_size=n))),
        clock_skew=draw(st.sampled_from([0.0, 0.001, 1.0])),
        names=draw(st.sampled_from([("data",), ("data", "ckpt")])) if mode == "named" else (),
        workload=draw(st.sampled_from([0.0, 1.0, 3.0])),
        exit_codes=tuple(draw(st.lists(st.sampled_from([0, 1, 137]), min_size=n, max_size=n))),
    )


def first_start(c: Cluster, index: int) -> None:
    if index not in c.current():  # a restart fault may have started it already
        c.start(index)


def apply(c: Cluster, fault: Fault) -> None:
    if fault.kind == "outsider":
        # A pod outside the Job's Service claims ``index``; half the time it disagrees on the
        # peer count (which would abort a real pod's barrier). It must change nothing.
        if fault.half_open:
            c.start(fault.index, outsider=True, peers=c.peers + 1)
        else:
            c.start(fault.index, outsider=True)
    elif fault.kind == "reset":
        c.reset_sessions(fault.index)
    elif fault.kind == "partition":
        pair = (fault.index, fault.other)
        c.blocked.add(pair)
        c.at(fault.at + fault.span, lambda: c.blocked.discard(pair))
    else:
        node = c.current().get(fault.index)
        if node is None:
            return  # not started yet: nothing to restart
        # restarts only before the release where the agent's process ends with its wait (an
        # init container that exited is not run again; a workload that failed fails its pod)
        if c.mode in ("wait", "run", "exit") and (node.verdict or not node.alive):
            return
        if fault.kind == "restart":
            c.restart(fault.index, gap=fault.span, half_open=fault.half_open, new_pod=fault.new_pod)
        elif node.alive and c.mode in ("sidecar", "named"):
            # Two live instances of one index until the old one ends (its node cut off from the
            # API server). Not in wait mode, where the old one may be released and acked for the
            # index (or exit with everyone) while the new one redials a coordinator that left.
            c.start(fault.index, keep_old=True)
            c.at(fault.at + fault.span, lambda: c.kill(node, half_open=fault.half_open))


def simulate(s: Schedule) -> tuple[Cluster, float]:
    """Run the schedule to well past its faults; returns the cluster and F."""
    delays = (s.delay / 10, s.delay)
    c = Cluster(
        s.n,
        seed=s.seed,
        mode=s.mode,
        delay=delays,
        dns_delay=s.dns_delay,
        probe=s.probe,
        degree=s.degree,
        views={i: View(*v) for i, v in enumerate(s.views)},
        clock_skew=s.clock_skew,
        names=s.names,
        workload=s.workload,
    )
    c.exit_codes.update(enumerate(s.exit_codes))
    for index, when in enumerate(s.starts):
        c.at(when, functools.partial(first_start, c, index))
    for fault in s.faults:
        c.at(fault.at, functools.partial(apply, c, fault))
    ends = [*s.starts, *(f.at + f.span for f in s.faults)]
    drops, drop_until = random.Random(s.seed), max(ends)

    def hook(src: Node, dst: Node, message: Message) -> Fate:
        if c.now < drop_until and drops.random() < s.drop:
            return drops.choice([Fate.LOST, Fate.AFTER])
        return Fate.DELIVER

    c.on_send = hook
    horizon = max(ends) + LIVE + LINGER + s.dns_lag + 5
    if s.mode in ("exit", "named"):  # then a workload or a client's ask, then that barrier
        horizon += s.workload + LIVE + LINGER + s.dns_lag
    c.run_until(horizon)
    healed = [f.at + f.span for f in s.faults if f.kind == "partition"]
    return c, max([c.last_fault, *healed])


def check_liveness(c: Cluster, faults_end: float, s: Schedule) -> None:
    """Every index's latest instance released in every barrier of the mode, in time: the start
    barrier within LIVE of F; an exit or named barrier, which begins a workload (or a client's
    ask) after the start barrier's last release, within LIVE of that or of F."""
    live = LIVE + s.dns_lag
    if not claimed(c, "", faults_end):
        return
    started = released(c, "", faults_end + live, lingers=LINGER)
    later = [EXIT_BARRIER] if c.mode == "exit" else [named_barrier(n) for n in c.names]
    for barrier in later:
        if claimed(c, barrier, faults_end):
            released(c, barrier, max(faults_end, started + s.workload) + live, lingers=LINGER)
    for node in c.current().values():
        assert node.exited or c.mode in ("sidecar", "named"), c.describe()


@pytest.mark.timeout(300)
@settings(
    max_examples=budget(15),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(schedules())
# Found in a CI-like run: pod 2 replaced by a new pod (new address) while its old session to the
# coordinator stayed half-open. The new instance's Arrive came on a session held until DNS
# listed its address, and the coordinator released counting the old instance: allowed (it is
# what a release a moment before the new hello would be), and the checker now says so.
@example(
    Schedule(
        n=7,
        mode="wait",
        seed=745,
        starts=(0.515, 0.722, 0.339, 0.442, 0.075, 0.0, 0.236),
        faults=(
            Fault("restart", 0.0, 0, 0, 0.0, False, False),
            Fault("restart", 0.0, 0, 0, 0.0, False, False),
            Fault("restart", 1.291, 2, 0, 0.42, True, True),
            Fault("reset", 0.722, 2, 0, 0.0, False, False),
            Fault("reset", 1.524, 3, 0, 0.0, False, False),
        ),
        drop=0.0,
        delay=0.2,
        dns_delay=0.0,
    )
)
@example(  # a held session dies after its Arrive; vouched for before the core hears of the loss
    Schedule(
        n=2,
        mode="wait",
        seed=38831,
        starts=(0.001, 0.557),
        faults=(
            *[Fault("restart", 0.0, 0, 0, 0.0, False, False)] * 2,
            Fault("reset", 1.614, 0, 0, 0.0, False, False),
        ),
        drop=0.0,
        delay=0.2,
        dns_delay=0.5,
    )
)
@example(  # released with an outsider's contact held: the round that vouches is due at once
    Schedule(
        n=1,
        mode="sidecar",
        seed=136,
        starts=(0.0,),
        faults=(
            Fault("partition", 0.0, 0, 0, 1.135, False, False),
            Fault("outsider", 0.178, 0, 0, 0.0, False, False),
        ),
        drop=0.0,
        delay=0.001,
        dns_delay=0.5,
    )
)
@example(  # a coordinator restarted after the release, with a probe that says no hello
    Schedule(
        n=2,
        mode="sidecar",
        seed=0,
        starts=(0.0, 0.0),
        faults=(Fault("restart", 0.5, 0, 0, 0.1, False, False),),
        drop=0.0,
        delay=0.001,
        dns_delay=0.0,
        probe="icmp",
    )
)
def test_safe_always_and_live_once_faults_stop(s: Schedule) -> None:
    c, faults_end = simulate(s)
    assert c.unsafe() == [], c.describe()
    check_liveness(c, faults_end, s)


#: Found by hypothesis: pod 0 replaced by a new pod (``overlap``) while its clients ask for names.
#: The old pod's client asks for "ckpt" after the new pod's did, and the old pod ends before it
#: is released: not a liveness failure (tests/sim/test_replaced_named.py says why).
REPLACED_ASKS_LATE = Schedule(
    n=5,
    mode="named",
    seed=616,
    starts=(0.393, 0.0, 0.0, 0.0, 2.631),
    faults=(
        Fault("restart", 0.0, 0, 0, 0.0, False, False),
        Fault("restart", 2.399, 0, 0, 0.0, False, False),
        Fault("restart", 2.617, 0, 0, 0.15, False, False),
        Fault("outsider", 0.0, 0, 0, 0.0, False, False),
        Fault("overlap", 5.665, 0, 0, 0.348, False, False),
    ),
    drop=0.0,
    delay=0.001,
    dns_delay=0.0,
    clock_skew=0.001,
    names=("data", "ckpt"),
    workload=3.0,
)


@pytest.mark.timeout(300)
@settings(
    max_examples=budget(10),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(schedules(kinds=(*FAULTS, "overlap")))
@example(  # two instances of pod 2 vouched for at once; the older session is closed at once
    Schedule(
        n=3,
        mode="sidecar",
        seed=2892,
        starts=(0.041, 0.54, 0.95),
        faults=(
            *[Fault("restart", 0.0, 0, 0, 0.0, False, False)] * 3,
            Fault("overlap", 0.506, 0, 0, 0.008, False, False),
            Fault("overlap", 0.95, 2, 0, 1.027, False, False),
        ),
        drop=0.0,
        delay=0.2,
        dns_delay=0.5,
    )
)
@example(  # two instances of pod 2 held unvouched, then listed by one answer (checker's order)
    Schedule(
        n=5,
        mode="sidecar",
        seed=168,
        starts=(0.136, 0.146, 4.089, 0.125, 0.304),
        faults=(
            Fault("restart", 0.0, 0, 0, 0.0, False, False),
            Fault("outsider", 0.129, 1, 0, 0.0, True, False),
            Fault("outsider", 0.203, 1, 0, 0.0, False, False),
            Fault("overlap", 3.103, 4, 0, 1.251, False, False),
            Fault("overlap", 4.141, 2, 0, 0.504, True, False),
        ),
        drop=0.0,
        delay=0.001,
        dns_delay=0.5,
    )
)
@example(REPLACED_ASKS_LATE)
def test_overlapping_instances_safe_and_live(s: Schedule) -> None:
    """Two live instances of one index (sidecar mode), the coordinator's included: a
    coordinator instance can reach everyone before anyone it can see is released; it asks the
    members that have not arrived again (``agent.core.lookaround``) and hears of the release."""
    c, faults_end = simulate(s)
    assert c.unsafe() == [], c.describe()
    check_liveness(c, faults_end, s)


@pytest.mark.timeout(60)
@settings(max_examples=budget(0.6), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schedules())
def test_a_schedule_replays_identically(s: Schedule) -> None:
    """Determinism: the same schedule gives the same trace (so a failure replays exactly)."""
    assert simulate(s)[0].describe() == simulate(s)[0].describe()
