"""One simulated agent process: ``agent.loop.Loop`` over the real cores (see cluster.py).

:meth:`Node.step` is the top of ``_run`` (leave once the verdict allows, start due attempts and
sweeps, poll the member, sleep until the next wakeup), :meth:`Node.act` is ``Loop.act``, and the
other methods are the branches of ``Loop.handle`` (``nudged``, ``swept``, ``address_probed``,
``reached``), in the same order and with the same guards, so that what the cores see here is what
they see in a pod. The probe is the default ``tcp`` one, hence bulk discovery: a ``Sweep`` of the
Service's name finds the peers, and ``Reach`` attempts only this pod's own name.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from agent.barrier import Aborted, Action, Close, Connect, Coordinator, Member, Released, Send
from agent.probes import ProbeResult
from agent.reach import Reach
from agent.runner import ABORT_LINGER
from agent.sweep import Sweep
from agent.wire import Hello, Identity, Message

if TYPE_CHECKING:
    from tests.sim.cluster import Cluster

__all__ = ["End", "Node", "Pod", "RunnerModel"]


@dataclass(frozen=True)
class RunnerModel:
    """Runner behaviour the barrier depends on; the defaults are agent/runner.py as it is."""

    #: close a session whose send failed, so its reader reports the loss (Contacts.send)
    close_on_send_failure: bool = True
    #: a member that aborts keeps answering probes this long, so index 0 hears of it
    abort_linger: float = ABORT_LINGER
    #: a coordinator waiting with its Reach done probes the members not connected to it this
    #: often, and heeds a released flag from a peer it had reached already (today: never)
    reprobe_waiting: float = 0.0


@dataclass(eq=False)
class Pod:
    index: int
    address: str
    published_at: float
    withdrawn_at: float = math.inf
    node: Node | None = None  # the agent instance running in it now


@dataclass(eq=False)
class End:
    """One side of a TCP connection, held by ``node`` under ``conn`` (``Contacts.channels``)."""

    node: Node
    conn: int
    last: float  # arrival time of the last thing sent from here: keeps each direction FIFO
    opened_at: float  # when ``node`` handles _Opened: no news of this session comes before it
    peer: End | None = None
    open: bool = True


class Node:
    """One agent process: ``Loop`` over the real cores, on simulated I/O."""

    def __init__(self, cluster: Cluster, pod: Pod, me: Identity, mode: str) -> None:
        now = cluster.now
        self.cluster, self.pod, self.me, self.mode = cluster, pod, me, mode
        self.reach = Reach(me.peers, now=now, rand=cluster.rng.random, scheduled={me.index})
        self.sweep = Sweep(now=now, rand=cluster.rng.random)
        self.coordinator = Coordinator(me) if me.index == 0 else None
        self.member = None if me.index == 0 else Member(now=now, rand=cluster.rng.random)
        self.channels: dict[int, End] = {}
        self.attempting: set[int] = set()  # per-name attempts in flight
        self.next_conn = itertools.count()
        self.state = "running"  # "serving" once _run returned in a process that stays; "gone"
        self.started_at = now
        self.reach_done_at: float | None = None
        self.verdict_at: float | None = None  # when the core emitted Released / Aborted
        self.left_at: float | None = None  # when _run returned
        self.exited = False  # it left by itself (not crashed)
        self.acks: set[int] = set()  # coordinator: members whose Ack reached it
        self.all_acked_at: float | None = None
        self.wake_at = -math.inf
        self.next_reprobe: float | None = None

    def __repr__(self) -> str:
        return f"agent {self.me.index}@{self.pod.address}"

    @property
    def verdict(self) -> Released | Aborted | None:
        side = self.coordinator or self.member
        return side.verdict if side else None

    @property
    def alive(self) -> bool:
        return self.state != "gone"

    def step(self) -> None:
        """The top of ``_run``: leave when the verdict allows it, else probe, poll and sleep."""
        if self.state != "running":
            return
        now, verdict, c, m = self.cluster.now, self.verdict, self.coordinator, self.member
        if verdict is not None:
            # A sidecar stays up anyway: once released it need not linger for acks.
            linger = not (self.mode == "sidecar" and isinstance(verdict, Released))
            if c is None or not linger or c.may_leave(now):
                self._leave(now, lingered=linger)
                return
        for index in self.reach.due(now):
            self.cluster.attempt(self, index)
        if self.sweep.query_due(now):
            self.cluster.sweep(self)
        if m is not None:
            self.act(m.poll(now))
        reprobing = c is not None and verdict is None and self.reach.done
        if reprobing:
            assert c is not None
            self._reprobe(c, now)
        wakeups = [
            self.reach.next_wakeup(),
            self.sweep.next_wakeup(),
            m.next_wakeup() if m else None,
            c.leave_at() if c else None,
            self.next_reprobe if reprobing else None,
        ]
        self.cluster.wake(self, min((w for w in wakeups if w is not None), default=math.inf))

    def _reprobe(self, c: Coordinator, now: float) -> None:
        """RunnerModel.reprobe_waiting: ask the members that never came whether it is over."""
        period = self.cluster.runner.reprobe_waiting
        if period <= 0 or (self.next_reprobe or 0.0) > now:
            return
        self.next_reprobe = now + period
        for index, why in c.waiting_for():
            address = self.reach.peers[index].address
            if why == "not connected" and self.sweep.probe(address, push=True):
                self.cluster.probe_address(self, address)

    def _leave(self, now: float, *, lingered: bool) -> None:
        self.left_at = now
        c, cluster = self.coordinator, self.cluster
        # may_leave, checked against the acks the network delivered rather than the core's own
        # books; a coordinator that learnt the release from a peer has nobody to wait for.
        if (
            lingered
            and c is not None
            and c.verdict is not None
            and "already released" not in str(c.verdict)
            and not (self.acks >= c.members or now >= c.verdict_at + c.linger)
        ):
            cluster.violations.append(f"{self} left before all acks and the linger bound")
        if isinstance(self.verdict, Aborted):  # BarrierAborted: the process exits (code 4)
            if self.member is not None and cluster.runner.abort_linger > 0:
                self.state = "serving"
                cluster.at(now + cluster.runner.abort_linger, lambda: cluster.exit(self))
            else:
                cluster.exit(self)
        elif self.mode == "sidecar":
            self.state = "serving"
        else:
            cluster.exit(self)

    def act(self, actions: list[Action]) -> None:
        """``Loop.act``: a send or close on a session that is gone is skipped, as there."""
        for action in actions:
            if isinstance(action, Send):
                if (end := self.channels.get(action.conn)) is not None:
                    self.cluster.send(end, action.message)
            elif isinstance(action, Close):
                if (end := self.channels.get(action.conn)) is not None:
                    self.cluster.close(end)
            elif isinstance(action, Connect):
                self.cluster.connect(self)
            elif self.verdict_at is None:  # Released or Aborted: what the user sees
                self.verdict_at = self.cluster.now

    # --- Loop.handle --------------------------------------------------------------------------
    def opened(self, conn: int, hello: Hello) -> None:
        now = self.cluster.now
        if self.coordinator is not None:
            self.act(self.coordinator.joined(conn, hello, now))
        elif self.member is not None:
            self.act(self.member.opened(conn, now))

    def received(self, conn: int, message: Message) -> None:
        now = self.cluster.now
        if self.coordinator is not None:
            self.act(self.coordinator.received(conn, message, now))
        elif self.member is not None:
            self.act(self.member.received(message, now))

    def lost(self, conn: int, reason: str) -> None:
        now, m = self.cluster.now, self.member
        if self.coordinator is not None:
            self.act(self.coordinator.closed(conn, now))
        elif m is not None and (conn == -1 or conn == m.conn):
            self.act(m.connect_failed(reason, now))

    def nudged(self, index: int, address: str) -> None:
        """Peer ``index`` said hello from ``address``: probe it now (a push), not next round."""
        if index == self.me.index:
            self.reach.nudge(index, self.cluster.now)
        elif not self.reach.peers[index].reached and self.sweep.pushed(address, self.cluster.now):
            self.cluster.probe_address(self, address)

    def attempted(self, index: int, result: ProbeResult, address: str) -> None:
        self.attempting.discard(index)
        if self.state != "running":
            return  # _keep_dispatching drops per-name attempts
        if not result.ok and not result.disagrees:
            self.reach.failed(index, result.reason, self.cluster.now)
        else:
            self.reached(index, result, address)

    def swept(self, addresses: list[str], problem: str) -> None:
        now = self.cluster.now
        if problem:
            self.sweep.failed(problem, now)
            return
        for address in self.sweep.answered(addresses, now):
            self.sweep.probe(address)
            self.cluster.probe_address(self, address)

    def address_probed(self, address: str, result: ProbeResult) -> None:
        if result.ok and result.index is not None and result.index < self.me.peers:
            self.sweep.probed(address, reached=True)
            self.reached(result.index, result, address)
        else:
            self.sweep.probed(address, reached=False, reason=result.reason)
            if result.disagrees:
                self.reached(result.index or 0, result, address)

    def reached(self, index: int, result: ProbeResult, address: str) -> None:
        """Peer ``index`` answered at ``address`` (or disagrees with us about the job)."""
        now, side = self.cluster.now, self.coordinator or self.member
        if result.disagrees:
            if side is not None:
                self.act(side.abort(result.reason, now))
            return
        if self.reach.peers[index].reached:
            if result.released and side is not None and self.cluster.runner.reprobe_waiting:
                self.act(side.peer_released(now))
            return
        self.reach.succeeded(index, address, now)
        if result.released and side is not None:
            self.act(side.peer_released(now))
        if self.reach.done:
            self.sweep.stop()
            self.reach_done_at = now
            if self.coordinator is not None:
                self.act(self.coordinator.self_arrived(now))
            elif self.member is not None:
                self.act(self.member.reached_all(now))
