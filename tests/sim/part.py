"""One part of an in-memory cluster split over OS processes (tests/sim/procs.py): the pods of
some tree groups run here, on a heap of their own; the others' are ghosts.

Every pod of the Job is created in each part, in the same order and with the same draws, so
each part holds the whole DNS zone (names, addresses, instance ids) and the Service's answer;
the pods of the other part are :class:`GhostPod`: their record and what a probe or a dial reads
of their agent (its identity, whether it is up, whether it is released), as that part last told
(``changed``). What reaches one of them is a message to the other part (``outbox``), due at
least the network's least delay later (the lookahead, ``delays[0]``): a probe's hello
(``Contacted``), a dial's accepted session, each message on a session, its FIN or its reset.
The parts run in windows of that length and swap their messages at each window's end, so no
message arrives before its window (conservative synchronisation). What a part reads of a ghost
is as of the last window's end: up to one lookahead older than what one process reads.

Only fault-free Jobs of ``wait`` agents with the tcp probe are split: a restart, a partition,
a dropped message and another mode's instances are not carried across (``Part`` refuses them).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

from agent.core.answers import dial_failed, failed_handshake, identity_failure
from agent.core.causes import Cause, Failure
from agent.core.groups import Tree
from agent.core.inputs import Contacted, Opened, ProbeResult, Reached, Received, Unreached
from agent.protocol.routing import key_of, route
from agent.protocol.wire import Ack, Hello, Identity, Message, Role
from tests.sim.cluster import Cluster
from tests.sim.dns import TIMED_OUT, resolution
from tests.sim.node import End, Node, Pod
from tests.sim.tasks import Tasks

__all__ = ["Far", "GhostPod", "Part", "owner_split"]

#: what one part tells the other (``Part.outbox``: (when, kind, what))
CONTACTED, ACCEPT, DELIVER, EOF, LOSE, STATE = range(6)


def owner_split(n: int, parts: int) -> list[int]:
    """The first index of each part: whole tree groups (``agent.core.groups.Tree``), a group
    coordinator's sessions with its members never across; part 0, which holds the root, gets
    the fewer groups when they do not divide."""
    size = Tree.of(n).size
    groups = -(-n // size)
    return [min(n, size * (groups * p // parts)) for p in range(parts)] + [n]


@dataclass(eq=False)
class GhostPod(Pod):
    """A pod of the other part, with what this part may read of its agent."""

    me: Identity | None = None
    up: bool = True
    released: bool = False

    def reaches(self, hello: Identity) -> bool:
        """Whether a connection saying ``hello`` reaches its agent (``Pod.target``)."""
        return self.up and self.me is not None and route(hello, [key_of(self.me)]) is not None


@dataclass(eq=False)
class Far(End):
    """The other part's end of a session held here: ``node`` is this part's end's (a
    placeholder, never fed), ``index`` the far agent's, ``sid`` the session's name in both."""

    index: int = -1
    sid: str = ""


#: a message across: when it is due, its kind, what it carries
Item = tuple[float, int, tuple[object, ...]]


class Part(Cluster):
    """The pods of indices [``first``, ``last``) of an ``peers``-pod cluster (cluster.py)."""

    def __init__(
        self,
        peers: int,
        first: int,
        last: int,
        *,
        degree: int | None = None,
        seed: int = 0,
        cpu_meter: Callable[[], int] | None = None,
    ) -> None:
        # named one by one: a compiled **kwargs reached Cluster's peers as the dict
        super().__init__(peers, mode="wait", degree=degree, seed=seed, cpu_meter=cpu_meter)
        self.first, self.last = first, last
        self.tasks = PartTasks(self)
        self.lookahead = self.delays[0]
        self.outbox: list[Item] = []
        self.local: dict[str, Node] = {}  # instance -> its agent here
        self.ghosts: dict[str, GhostPod] = {}  # instance -> its pod, of the other part
        self.ends: dict[str, End] = {}  # sid -> this part's end of a session across

    def mine(self, index: int) -> bool:
        return self.first <= index < self.last

    def enter(self, index: int) -> None:
        """Pod ``index`` starts: its agent if it is this part's, else its ghost, made with the
        same draws in the same order as ``Cluster.start`` (``_pod``, ``identity``)."""
        if self.mine(index):
            node = self.start(index)
            self.local[node.me.instance] = node
            return
        address = f"10.{index}.0.{len(self.pods)}"
        pod = GhostPod(index, address, self.now + self.dns_delay, clock=self.draws.clock())
        pod.me = self.identity(index, pod)
        self.pods.append(pod)
        self.pods_of[index] = [pod]
        self.pod_at[address] = pod
        self.ghosts[pod.me.instance] = pod

    # --- what this part tells the other --------------------------------------------------------
    def emit(self, when: float, kind: int, *what: object) -> None:
        if when < self.now + self.lookahead * (1 - 1e-9):
            self.violations.append(f"a message across at {when} sent at {self.now}")
        self.outbox.append((when, kind, what))

    def changed(self, node: Node) -> None:
        pod, released = node.pod, node.agent.released
        state = (node.me.instance, node.alive, released, pod.withdrawn_at)
        self.outbox.append((self.now, STATE, state))

    def kill(self, node: Node, *, half_open: bool = False, alone: bool = False) -> None:
        super().kill(node, half_open=half_open, alone=alone)
        self.changed(node)

    def exit(self, node: Node, *, runs_for: float | None = None) -> None:
        super().exit(node, runs_for=runs_for)
        self.changed(node)

    # --- what the other part told ----------------------------------------------------------------
    def take(self, items: list[Item]) -> None:
        """The other part's messages of its last window: each at its time, a change now."""
        for when, kind, what in items:
            if kind == STATE:
                self._state(*what)  # type: ignore[arg-type]
            else:
                self.at(when, functools.partial(self._arrive, kind, what))

    def _state(self, instance: str, up: bool, released: bool, withdrawn: float) -> None:
        pod = self.ghosts[instance]
        pod.up, pod.released = up, released
        if withdrawn != pod.withdrawn_at:
            pod.withdrawn_at = withdrawn
            self.answers.withdrawn(pod)

    def _arrive(self, kind: int, what: tuple[object, ...]) -> None:
        if kind == CONTACTED:
            instance, hello, address = what
            node = self.local[str(instance)]
            assert isinstance(hello, Hello)
            contacted = Contacted(hello, str(address))
            self.post(node, self.now, lambda: node.feed(contacted))
        elif kind == ACCEPT:
            self._accept(*what)  # type: ignore[arg-type]
        elif (end := self.ends.get(str(what[0]))) is not None:
            if kind == DELIVER:
                message = what[1]
                self.on(end.node.pod, lambda: self._deliver(end, message))  # type: ignore[arg-type]
            elif kind == EOF:
                self.on(end.node.pod, lambda: self._eof(end, "connection closed"))
            elif kind == LOSE and end.open:
                end.open = False
                end.node.channels.pop(end.conn, None)
                when = max(self.now, end.opened_at)
                self.post(end.node, when, functools.partial(self._lose, end, "reset"))

    def _accept(self, server: str, sid: str, hello: Hello, address: str, replied: float) -> None:
        """The server's side of a dial across (``Tasks.dial``): its end, the session in the
        record, ``Opened`` now (the dial's time); what it sends leaves after ``replied``."""
        node, t = self.local[server], self.now
        far = Far(node, -1, last=t, opened_at=t, index=hello.identity.index, sid=sid)
        theirs = End(node, next(node.next_conn), last=replied, opened_at=t, peer=far)
        self.ends[sid] = theirs
        if node.me.barrier == hello.identity.barrier:
            node.truth.session(
                theirs, client=hello.identity.instance, server=server, address=address, now=t
            )
        node.channels[theirs.conn] = theirs
        node.opened()
        node.sessions += 1
        opened = Opened(theirs.conn, hello, False, address)
        self.post(node, t, functools.partial(node.feed, opened))

    # --- sessions across -----------------------------------------------------------------------
    def send(self, end: End, message: Message) -> None:
        peer = end.peer
        if not isinstance(peer, Far):
            super().send(end, message)
            return
        end.last = max(self.departs(end.node.pod) + self.delay(), end.last)
        self.emit(end.last, DELIVER, peer.sid, message)

    def fin(self, end: End, *, after: float | None = None) -> None:
        peer = end.peer
        if not isinstance(peer, Far):
            super().fin(end, after=after)
            return
        end.last = max(self.now + (self.delay() if after is None else after), end.last)
        self.emit(end.last, EOF, peer.sid)

    def reset(self, end: End) -> None:
        peer = end.peer
        if not isinstance(peer, Far):
            super().reset(end)
            return
        self.last_fault = self.now
        if end.open:
            end.open = False
            end.node.channels.pop(end.conn, None)
            when = max(self.now + self.delay(), end.opened_at)
            self.post(end.node, when, functools.partial(self._lose, end, "reset"))
        self.emit(self.now + self.delay(), LOSE, peer.sid)

    def _deliver(self, end: End, message: Message) -> None:
        sender = end.peer
        if not isinstance(sender, Far):
            super()._deliver(end, message)
            return
        node = end.node
        if end.open and node.alive:
            if isinstance(message, Ack) and node.coordinator is not None:
                node.acks.add(sender.index)
                if node.acks >= node.coordinator.members and node.all_acked_at is None:
                    node.all_acked_at = self.now
            node.truth.delivered(end, message, self.now)
            node.messages += 1
            node.feed(Received(end.conn, message))
            node.after()


class PartTasks(Tasks):
    """The I/O tasks of a part: a probe or a dial of a ghost reads what the other part told and
    sends what its pod would be given."""

    def __init__(self, cluster: Part) -> None:
        super().__init__(cluster)
        self.part = cluster  # ``c`` as the part it is (its type is Tasks')

    def _far_served(self, pod: GhostPod, src: Node, when: float, role: Role) -> None:
        assert pod.me is not None
        hello = Hello(src.me, role, "sim", src.agent.released)
        self.part.emit(when, CONTACTED, pod.me.instance, hello, src.pod.address)

    def _connect_failure(self, src: Node, pod: Pod) -> Failure | None:
        if not isinstance(pod, GhostPod):
            return super()._connect_failure(src, pod)
        port = src.me.port
        if (src.me.index, pod.index) in self.c.blocked:
            return Failure(f"connect to port {port} timed out", Cause.CONNECT_TIMEOUT)
        if not pod.reaches(src.me):
            return Failure(f"connect to port {port}: refused", Cause.CONNECT_REFUSED)
        return None

    def _hello(
        self, src: Node, pod: Pod, expected: int | None, *, hello: bool = False
    ) -> tuple[ProbeResult, float]:
        if not isinstance(pod, GhostPod) or not (hello or src.agent.config.probe.says_hello):
            return super()._hello(src, pod, expected, hello=hello)
        took = 2 * self.c.delay()
        if (refused := self._connect_failure(src, pod)) is not None:
            timed_out = refused.cause is Cause.CONNECT_TIMEOUT
            return Unreached(refused), self.c.timing.connect_timeout if timed_out else took
        me = pod.me
        assert me is not None
        self._far_served(pod, src, self.c.departs(src.pod) + took / 2, Role.PROBE)
        failure = identity_failure(src.me, me, expected_index=expected)
        if failure is not None:
            return failed_handshake(failure), took
        return Reached(me.index, me.instance, pod.released), took

    def dial(self, src: Node, addresses: tuple[str, ...] = (), index: int = 0) -> None:
        if self.part.mine(index):
            super().dial(src, addresses, index)
            return
        if (wait := self._waits(src, addresses)) is None:
            failed = dial_failed(TIMED_OUT, [])
            when = self.c.departs(src.pod) + self.c.timing.dns_timeout
            self.c.post(src, when, lambda: src.feed(failed))
            return
        pods = self._resolve_or_reuse(src, index, addresses)
        t, problems, handshakes = self.c.departs(src.pod) + wait, [], []
        causes: list[Cause | None] = []  # why each address failed (``dial_failed``)
        for pod in pods:
            assert isinstance(pod, GhostPod) and pod.me is not None
            if (refused := self._connect_failure(src, pod)) is not None:
                problems.append(f"{pod.address}: {refused.reason}")
                causes.append(refused.cause)
                if refused.cause is Cause.CONNECT_TIMEOUT:
                    t += self.c.timing.connect_timeout
                continue
            t += self.c.delay()  # our hello reaches the server: it answers, then posts _Opened
            replied = t + self.c.delay()  # its reply reaches us
            conn = next(src.next_conn)
            sid = f"{src.me.instance}/{conn}"
            hello = Hello(src.me, Role.MEMBER, "sim", src.agent.released)
            # what the server sends comes after our Opened (``replied``), as Tasks.dial keeps it
            self.part.emit(t, ACCEPT, pod.me.instance, sid, hello, src.pod.address, replied)
            self._far_served(pod, src, t, Role.MEMBER)
            far = Far(src, -1, last=t, opened_at=t, index=pod.index, sid=sid)
            end = End(src, conn, last=t, opened_at=math.inf, peer=far)
            self.part.ends[sid] = end
            t = replied
            failure = identity_failure(src.me, pod.me, expected_index=index)
            if failure is not None:  # client_handshake fails and we close
                problems.append(f"{pod.address}: {failure.reason}")
                handshakes.append(failure)
                causes.append(failure.cause)
                end.open, end.last = False, t
                self.c.fin(end)
                continue
            src.channels[end.conn] = end
            src.opened()
            src.sessions += 1
            end.opened_at = t
            reply = Hello(pod.me, Role.REPLY, "sim", pod.released)
            self.c.post(src, t, functools.partial(src.feed, Contacted(reply, pod.address, True)))
            self.c.post(
                src, t, functools.partial(src.feed, Opened(end.conn, reply, True, pod.address))
            )
            return
        answer = resolution(pods)
        failed = dial_failed(answer, problems, causes, handshakes)
        self.c.post(src, t + self.c.delay(), lambda: src.feed(failed))
