"""One simulated agent process: the shipped :class:`agent.core.agent.Agent` on simulated I/O.

The node does what ``agent.io.runner`` does and nothing more: it hands every event to the core,
performs the effects the core returns through the simulated cluster (cluster.py), and sleeps
until the core's next wake-up. Every decision is the core's, so what is checked here is the code
that runs in a pod.
"""

from __future__ import annotations

import collections
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from agent.config.model import Config
from agent.core.agent import Agent
from agent.core.effects import (
    Aborted,
    Attempt,
    Close,
    Dial,
    Effect,
    Fail,
    Finish,
    Lookup,
    ProbeAddress,
    Released,
    Report,
    Send,
    Sweep,
    dispatch,
)
from agent.core.inputs import Input
from agent.core.log import LogKind
from agent.core.phase import MOVES
from agent.core.reach import Reach
from agent.core.roles import Coordinator, Member
from agent.core.seeded import proven_by
from agent.io.limits import MAX_IN_FLIGHT
from agent.protocol.routing import Key, route
from agent.protocol.wire import Identity
from tests.sim import modes

if TYPE_CHECKING:
    from tests.sim.cluster import Cluster
    from tests.sim.truth import Truth

__all__ = ["End", "Node", "Pod"]

T = TypeVar("T")


@dataclass(eq=False)
class Pod:
    index: int
    address: str
    published_at: float
    withdrawn_at: float = math.inf
    node: Node | None = None  # the agent process running in it now (its start barrier)
    outsider: bool = False  # not selected by the Service: DNS never lists it
    clock: float = 0.0  # how far its node's clock is off (its instances' start times)
    #: the process's barrier instances on its one port, as the mux registered them
    serving: dict[Key, Node] = field(default_factory=dict)
    #: its one core (``Cluster.cpu_meter``): the CPU its agents' core calls were charged, when
    #: the last charged call ends, and what reached its loop meanwhile (oldest first)
    cpu: float = 0.0
    busy_until: float = 0.0
    inbox: collections.deque[Callable[[], object]] = field(default_factory=collections.deque)
    draining: bool = False
    #: its instances an event reached since their last poll, in order (``Clock._drain``)
    touched: dict[Node, None] = field(default_factory=dict)

    def charge(self, seconds: float, now: float) -> None:
        """A core call of one of its agents took ``seconds`` of CPU, begun at ``now`` or once
        the calls before it ended, whichever is later."""
        self.cpu += seconds
        self.busy_until = max(self.busy_until, now) + seconds

    def target(self, hello: Identity) -> Node | None:
        """The instance a connection saying ``hello`` reaches here (``Mux.serve``), if any."""
        live = {key: node for key, node in self.serving.items() if node.alive}
        key = route(hello, live)
        return None if key is None else live[key]

    def answers(self, now: float) -> bool:
        """Whether the pod itself is there (its address pings, its workload's port listens),
        whatever its agent does: from its creation until it completes or is deleted."""
        return now < self.withdrawn_at


@dataclass(eq=False)
class End:
    """One side of a TCP connection, held by ``node`` under ``conn`` (``Sessions.channels``)."""

    node: Node
    conn: int
    last: float  # arrival time of the last thing sent from here: keeps each direction FIFO
    opened_at: float  # when ``node`` handles Opened: no news of this session comes before it
    peer: End | None = None
    open: bool = True


class Node:
    """One agent process: the real core, its effects performed on the simulated cluster."""

    agent: Agent

    def __init__(
        self,
        cluster: Cluster,
        pod: Pod,
        me: Identity,
        mode: str,
        *,
        config: Config | None = None,
        stays_for_acks: bool | None = None,
    ) -> None:
        """A barrier instance of ``mode`` (tests/sim/modes.py); ``config`` and
        ``stays_for_acks`` default to its start barrier's."""
        now = cluster.now
        self.cluster, self.pod, self.me, self.mode = cluster, pod, me, mode
        stays = modes.stays_for_acks(mode) if stays_for_acks is None else stays_for_acks
        # an exit or named barrier starts from what its process's start barrier proved, as the
        # runner hands it on (agent.core.seeded)
        start = pod.node if config is not None else None
        released = start is not None and start.me.instance == me.instance and start.agent.released
        callers = None if start is None else start.agent.callers
        heard = None if callers is None else callers.seeds  # pod I's (agent.core.callers)
        seed = proven_by(start.agent.reach, heard) if start is not None and released else None
        config = config or modes.config_for(mode, me, cluster.probe, cluster.degree, cluster.led_by)
        self.agent = self._core(
            lambda: Agent(
                config,
                me=me,
                now=now,
                rand=cluster.rng.random,
                timing=cluster.timing,
                stays_for_acks=stays,
                max_in_flight=MAX_IN_FLIGHT,
                seed=seed,
            )
        )
        self.truth.start(
            me,
            job_pod=not pod.outsider,
            linger=cluster.timing.ack_linger if stays else None,
            now=now,
            instances=self.agent.config.probe.says_hello,
        )
        #: the instances of this agent process (start, exit and named barriers): they die with it
        self.process: list[Node] = [self]
        self.phase = self.agent.phase  # as of the core's last call
        self.channels: dict[int, End] = {}
        self.attempting: set[int] = set()  # per-name attempts in flight
        self.next_conn = itertools.count()
        self.state = "running"  # "serving" once the wait ended in a process that stays; "gone"
        self.started_at = now
        self.reach_done_at: float | None = None
        self.verdict_at: float | None = None  # when the core emitted Released / Aborted
        self.left_at: float | None = None  # when the wait ended (Finish or Fail)
        self.exited = False  # it left by itself (not crashed)
        self.acks: set[int] = set()  # coordinator: members whose Ack reached it
        self.all_acked_at: float | None = None
        self.wake_at = -math.inf
        self.probing = 0  # probes of addresses in flight (``ProbeQueue``)
        self.most_sockets = 0  # the most sockets it had open at once: sessions, probes, attempts
        self.queries = 0  # DNS queries it asked (names resolved, the Service's own name)
        self.sessions = 0  # sessions it opened or accepted
        self.messages = 0  # messages it sent or was delivered on its sessions

    def opened(self) -> None:
        """One more socket may be open: the peak is kept (``agent.io.limits.fds_needed``)."""
        now_open = len(self.channels) + len(self.attempting) + self.probing
        self.most_sockets = max(self.most_sockets, now_open)

    def __repr__(self) -> str:
        barrier = f"[{self.me.barrier}]" if self.me.barrier else ""
        return f"agent {self.me.index}:{self.me.instance}{barrier}@{self.pod.address}"

    @property
    def truth(self) -> Truth:
        """The ground truth of this instance's barrier (each barrier is one of its own)."""
        return self.cluster.truth_of(self.me.barrier)

    # --- what the tests read -------------------------------------------------------------------
    @property
    def reach(self) -> Reach:
        return self.agent.reach

    @property
    def coordinator(self) -> Coordinator | None:
        side = self.agent.side
        return side if isinstance(side, Coordinator) else None

    @property
    def member(self) -> Member | None:
        side = self.agent.side
        return side if isinstance(side, Member) else None

    @property
    def verdict(self) -> Released | Aborted | None:
        return self.agent.verdict

    @property
    def counted(self) -> bool:
        """Released as one of the instances the coordinator counted (not as a late joiner)."""
        v = self.verdict
        return isinstance(v, Released) and v.kind.counted

    @property
    def alive(self) -> bool:
        return self.state != "gone"

    # --- the runner ----------------------------------------------------------------------------
    def begin(self) -> None:
        now = self.cluster.now
        self.perform(self._moving(self._core(lambda: self.agent.begin(now))))
        self.step()

    def _core(self, call: Callable[[], T]) -> T:
        """A call into the core, its CPU charged to this pod when the cluster models CPU
        (``Cluster.cpu_meter``): what reaches the pod's loop next waits for it."""
        meter = self.cluster.cpu_meter
        if meter is None:
            if (tally := self.cluster.cpu_tally) is None:
                return call()
            began = tally()
            result = call()
            self.pod.cpu += (tally() - began) / 1e9
            return result
        began = meter()
        result = call()
        self.pod.charge((meter() - began) * self.cluster.cpu_scale / 1e9, self.cluster.now)
        return result

    def _moving(self, effects: list[Effect]) -> list[Effect]:
        """``effects`` the core just returned, its phase checked against the moves
        ``agent.core.phase.MOVES`` allows one call to make."""
        phase = self.agent.phase
        if phase is not self.phase and (self.phase, phase) not in MOVES:
            self.cluster.violations.append(f"{self} moved from {self.phase} to {phase}")
        self.phase = phase
        return effects

    def step(self) -> None:
        """The top of the runner's loop (``_run``, then ``_keep_serving`` in a sidecar): what is
        due now, then sleep until the next wake-up."""
        if not self.alive:
            return
        now = self.cluster.now
        self.perform(self._moving(self._core(lambda: self.agent.poll(now))))
        if self.alive:
            self.cluster.wake(self, self.agent.next_wakeup())

    def woken(self, when: float) -> None:
        """The wake-up due at ``when`` (``Cluster.wake``), unless a later step replaced it: the
        runner sleeps until the core's latest ``next_wakeup`` only, and a wake-up a step has
        moved since would only poll a core with nothing due (a tenth of all polls, each
        charged)."""
        if self.wake_at == when:
            self.after()

    def after(self) -> None:
        """An event was handled (or a wake-up came): the top of ``_run`` again. With a CPU model
        the poll waits until every event queued at the pod is handled (``Clock._drain``), as
        ``_run`` drains its queue before it polls; ``_keep_serving`` polls after each event."""
        if self.cluster.cpu_meter is None or self.state == "serving":
            self.step()
        else:
            self.pod.touched[self] = None

    def feed(self, event: Input) -> None:
        """An I/O task posted ``event``: the core handles it, the node performs the effects."""
        if self.alive:
            now = self.cluster.now
            self.perform(self._moving(self._core(lambda: self.agent.handle(event, now))))

    def perform(self, effects: list[Effect]) -> None:
        """``runner.Executor.perform``: each effect through the shipped ``dispatch``."""
        for effect in effects:
            dispatch(self, effect)

    # --- one method per effect (agent.core.effects.EffectHandler) --------------------------------
    def attempt(self, effect: Attempt) -> None:
        self.cluster.tasks.attempt(
            self, effect.index, effect.instance, effect.addresses, hello=effect.hello
        )

    def sweep(self, effect: Sweep) -> None:
        self.cluster.tasks.sweep(self)

    def probe_address(self, effect: ProbeAddress) -> None:
        self.cluster.tasks.probe_address(self, effect.address)

    def lookup(self, effect: Lookup) -> None:
        self.cluster.tasks.lookup(self, effect.index)

    def dial(self, effect: Dial) -> None:
        self.cluster.tasks.dial(self, effect.addresses, effect.index)

    def send(self, effect: Send) -> None:
        """A send on a session that is gone is skipped (``Sessions.send``)."""
        self.truth.sent(self.me.instance, effect.message, self.cluster.now)
        self.messages += 1
        if (end := self.channels.get(effect.conn)) is not None:
            self.cluster.send(end, effect.message)

    def close(self, effect: Close) -> None:
        if (end := self.channels.get(effect.conn)) is not None:
            self.truth.closed(end, self.cluster.now)
            self.cluster.close(end)

    def report(self, effect: Report) -> None:
        if effect.line.kind is LogKind.REACHED_ALL and self.reach_done_at is None:
            self.reach_done_at = self.cluster.now

    def released(self, effect: Released) -> None:
        if self.verdict_at is None:  # what the user sees
            self.verdict_at = self.cluster.now
        self.truth.verdict(self.me.instance, effect, self.cluster.now)
        self.cluster.changed(self)  # its hellos say released from now

    def aborted(self, effect: Aborted) -> None:
        if self.verdict_at is None:
            self.verdict_at = self.cluster.now
        self.truth.verdict(self.me.instance, effect, self.cluster.now)

    def finish(self, effect: Finish) -> None:
        self._leave(self.cluster.now)

    def fail(self, effect: Fail) -> None:
        self._leave(self.cluster.now)

    def _leave(self, now: float) -> None:
        self.left_at = now
        self.truth.ended_wait(self.me.instance, now)  # tests/sim/safety.py judges the acks
        modes.after_wait(self)
