"""An in-memory cluster of N peer-agents: the shipped core on a simulated clock and network.

Every agent instance (a :class:`~tests.sim.node.Node`) is a real :class:`agent.core.agent.Agent`
whose effects are performed here the way ``agent.io.runner`` performs them (see node.py). Only what
lies under the runner is simulated, here:

- one heap of timed events (clock.py): a run is a pure function of its seed and schedule, or,
  with a CPU model, each pod's events queue behind its own core's measured CPU;
- DNS: peer i's name lists the addresses of its pods whose record is published, and the
  Service's own name (a sweep, ``Contacts.sweep``) every published pod's (tasks.py), each as
  the asking pod's resolver sees it (dns.py: a replica behind, one name before the other);
- a probe says hello at an address; the instance its hello names (the mux's rule, node.py)
  answers with its identity (instance included) and ``released`` flag and is told who said
  hello (``Contacted``); the prober judges the reply with the shipped ``agent.core.answers``
  (tasks.py); a ``tcp:PORT``, ``icmp`` or ``dns`` probe says no hello (``answers.blind``);
- a session (``dial_coordinator`` + ``serve`` + ``carry``) is a pair of :class:`End`, each
  direction FIFO with a random delay per message, ended by FIN, reset, or half-open until the
  keepalive notices; a hook (:attr:`Cluster.on_send`) decides the :class:`Fate` of each message;
- in ``wait`` mode an agent exits when its wait ends and its pod's record is withdrawn when the
  pod completes (the early exit); in ``sidecar`` mode it keeps serving (``_keep_serving``);
  ``run``, ``run --exit-barrier`` and named barriers as modes.py says.

It also keeps, through small hooks, the record the guarantee is judged from (truth.py, judged
by safety.py), one record per barrier (each barrier namespace is a barrier of its own): which
instance heard which instance's hello in a probe, every member session and the Arrives and Acks
delivered on it, when its coordinator's end learnt it had ended, and every Release, verdict and
departure; never a core's own state.
"""

from __future__ import annotations

import enum
import functools
import math
import random
from collections import Counter
from collections.abc import Callable, Mapping

from agent.config.model import Config
from agent.config.parse import parse_probe
from agent.core.inputs import Lost, Received
from agent.core.timing import DEFAULT_TIMING, Timing
from agent.protocol.routing import key_of
from agent.protocol.wire import START_BARRIER, Ack, Identity, Message
from tests.sim import judge
from tests.sim.clock import Clock
from tests.sim.dns import ServiceAnswers, View
from tests.sim.draws import Draws
from tests.sim.node import End, Node, Pod
from tests.sim.tasks import Tasks
from tests.sim.truth import Truth, sparse_graph

__all__ = ["CONNECT_TIMEOUT", "KEEPALIVE", "Cluster", "End", "Fate", "Node", "Pod"]

#: the shipped deadlines the simulated network keeps: a vanished peer's session is noticed
#: after the keepalive (Channel.keepalive); a probe or dial into a partition gives up after the
#: connect timeout (probes.connect, probes.probe)
KEEPALIVE = DEFAULT_TIMING.keepalive
CONNECT_TIMEOUT = DEFAULT_TIMING.connect_timeout


class Fate(enum.Enum):
    """What the network does with one message sent on a session."""

    DELIVER = "deliver"
    LOST = "lost"  # the connection dies with the message in it: both ends see a reset
    AFTER = "after"  # delivered, then the connection dies
    SILENT = "silent"  # the send does not go out (Timing.send_timeout): Sessions drops it


class Cluster(Clock):
    """N pods of one Indexed Job, their agents, DNS and network, on one simulated clock."""

    def __init__(
        self,
        peers: int,
        *,
        seed: int = 0,
        mode: str = "wait",
        delay: tuple[float, float] = (0.0005, 0.005),
        dns_delay: float = 0.0,
        complete_delay: float = 0.0,
        job: str = "job",
        uid: str = "uid-1",
        port: int = 29300,
        probe: str = "tcp",
        views: Mapping[int, View] | None = None,
        clock_skew: float = 0.0,
        names: tuple[str, ...] = (),
        workload: float = 0.0,
        cut: int | None = None,
        degree: int | None = None,  # ``--reach sparse --reach-degree`` (None: ``--reach all``)
        cpu_meter: Callable[[], int] | None = None,
    ) -> None:
        """``probe``: every pod's ``--probe``; ``views``: the DNS each pod's resolver sees, by
        index (tests/sim/dns.py); ``clock_skew``: how far each pod's clock may be off (its
        instances' start times); ``names``: the named barriers each pod's clients ask for, and
        ``workload``: how long, at most, a workload runs (``run``, ``exit``) or a pod's clients
        take to ask (``named``), and ``led_by`` (set after): ``--exit-led-by`` in ``exit``, all
        tests/sim/modes.py; ``cpu_meter``: clock.py; ``cut``: tests/sim/dns.py."""
        self.peers, self.mode, self.delays = peers, mode, delay
        self.probe, self.says_hello = probe, parse_probe(probe).says_hello
        self.views, self.clock_skew, self.cut = dict(views or {}), clock_skew, cut
        self.names, self.workload, self.degree, self.asked = names, workload, degree, Counter[int]()
        self.exit_codes: dict[int, int] = {}  # a workload's exit code by index (default 0)
        self.led_by: int | None = None
        self.workloads: dict[int, float] = {}  # how long a workload runs, by index (else drawn)
        self.draws = Draws(seed, clock_skew=clock_skew, workload=workload)
        self.dns_delay, self.complete_delay, self.job = dns_delay, complete_delay, job
        self.uid, self.port = uid, port
        super().__init__(cpu_meter)
        self.rng = random.Random(seed)
        self.timing: Timing = DEFAULT_TIMING
        self.pods: list[Pod] = []
        self.answers = ServiceAnswers()  # the headless Service's own name (dns.py)
        self.pods_of: dict[int, list[Pod]] = {}  # index -> its pods, oldest first
        self.pod_at: dict[str, Pod] = {}  # address -> the last pod given it
        #: the graph every pod of a sparse Job computes: built once, shared by every record
        self.graph = sparse_graph(peers, uid, degree)
        self.nodes: list[Node] = []  # every instance ever started, in start order
        self.on_send: Callable[[Node, Node, Message], Fate] | None = None
        self.blocked: set[tuple[int, int]] = set()  # (from, to): probes and connects time out
        self.slow: dict[tuple[int, int], float] = {}  # (from, to): extra delay of session messages
        self.violations: list[str] = []
        self.last_fault = 0.0  # last start, crash, reset or message fault: liveness counts from it
        #: what really happened, for the safety property: one record per barrier namespace
        self.truths: dict[str, Truth] = {}
        self.tasks = Tasks(self)  # the agents' I/O tasks: attempts, rounds, probes, dials

    # --- clock ---------------------------------------------------------------------------------
    def delay(self) -> float:
        return self.rng.uniform(*self.delays)

    def post(self, node: Node, when: float, fn: Callable[[], None]) -> None:
        """Something for ``node``'s loop at ``when``: handled, then the top of ``_run`` again."""

        def deliver() -> None:
            if node.alive:
                fn()
                node.after()

        self.at(when, functools.partial(self.on, node.pod, deliver))

    def wake(self, node: Node, when: float) -> None:
        if when == math.inf:
            return
        if when <= self.now:  # _run would spin: a core asked to be woken in the past
            self.violations.append(f"{node} asked for a wakeup at {when} <= now {self.now}")
            return
        if self.now < node.wake_at <= when:
            return  # an earlier wakeup is pending; that step will schedule the next one
        node.wake_at = when
        self.at(when, functools.partial(self.on, node.pod, functools.partial(node.woken, when)))

    @property
    def truth(self) -> Truth:
        """The start barrier's ground truth."""
        return self.truth_of(START_BARRIER)

    def truth_of(self, barrier: str) -> Truth:
        truth = self.truths.get(barrier)
        if truth is None:
            truth = self.truths[barrier] = Truth(graph=self.graph, key=self.uid.encode())
        return truth

    def view_of(self, node: Node) -> View:
        """What ``node``'s resolver lists (its pod's CoreDNS replica)."""
        return self.views.get(node.me.index, View())

    def workload_time(self, index: int) -> float:
        return self.workloads.get(index) or self.draws.workload_time()

    def asks_after(self, index: int, name: str) -> float:
        return self.draws.workload_time()

    def exit_code(self, index: int) -> int:
        return self.exit_codes.get(index, 0)

    # --- pods and agents -----------------------------------------------------------------------
    def identity(self, index: int, pod: Pod | None = None, **overrides: object) -> Identity:
        fields: dict[str, object] = dict(
            job=self.job,
            uid=self.uid,
            index=index,
            peers=self.peers,
            port=self.port,
            instance=self.draws.instance(
                index, self.now, pod.clock if pod else 0.0, outsider=bool(pod and pod.outsider)
            ),
        )
        fields.update(overrides)
        return Identity(**fields)  # type: ignore[arg-type]

    def _pod(self, index: int, address: str, published_at: float, outsider: bool = False) -> Pod:
        pod = Pod(index, address, published_at, clock=self.draws.clock(), outsider=outsider)
        self.pods.append(pod)
        self.pods_of.setdefault(index, []).append(pod)
        self.pod_at[address] = pod
        return pod

    def _begin(self, pod: Pod, index: int, mode: str, spec: dict[str, object]) -> Node:
        """The agent process of ``pod``: its start barrier, registered on its port."""
        node = Node(self, pod, self.identity(index, pod, **spec), mode)
        pod.node = node
        pod.serving = {key_of(node.me): node}
        self.nodes.append(node)
        node.begin()
        return node

    def begin_instance(
        self, start: Node, me: Identity, config: Config, *, stays_for_acks: bool
    ) -> Node:
        """One more barrier instance in ``start``'s process, on its port (exit, named: modes.py)."""
        node = Node(self, start.pod, me, start.mode, config=config, stays_for_acks=stays_for_acks)
        node.process = start.process
        start.process.append(node)
        start.pod.serving[key_of(me)] = node
        self.nodes.append(node)
        node.begin()
        return node

    def is_ours(self, me: Identity) -> bool:
        """A pod of this job (a pod without the uid still is one: it disagrees, not a stranger)."""
        return me.job == self.job and (me.uid == self.uid or not me.uid or not self.uid)

    def start(
        self,
        index: int,
        *,
        new_pod: bool = True,
        keep_old: bool = False,
        outsider: bool = False,
        **spec: object,
    ) -> Node:
        """Start an agent for ``index``: in a new pod (new address) or the pod it had before.

        ``keep_old`` leaves other pods with that name in DNS (a stale pod of another run);
        ``outsider``: a pod the Service does not select (DNS never lists it) whose agent claims
        to be ``index``; ``spec`` sets ``mode`` or overrides the identity (``peers``, ``uid``,
        ``port``, ``job``).
        """
        mode = str(spec.pop("mode", self.mode))
        if outsider:
            pod = self._pod(index, f"10.99.0.{len(self.pods)}", math.inf, outsider=True)
            return self._begin(pod, index, mode, spec)
        self.last_fault = self.now
        old = [
            p for p in self.pods_of.get(index, ()) if p.withdrawn_at > self.now and not p.outsider
        ]
        if not keep_old:
            for pod in old:
                if pod.node is not None and pod.node.alive:
                    self.kill(pod.node)  # the pod is deleted: its agent goes, sockets closed
        if new_pod or not old:
            for pod in [] if keep_old else old:
                pod.withdrawn_at = self.now
                self.answers.withdrawn(pod)
            pod = self._pod(index, f"10.{index}.0.{len(self.pods)}", self.now + self.dns_delay)
        else:
            pod = old[-1]
        return self._begin(pod, index, mode, spec)

    def crash(self, index: int, *, half_open: bool = False) -> None:
        """Kill the agents of ``index``; with ``half_open`` their peers notice only by keepalive."""
        self.last_fault = self.now
        for node in self.nodes:
            if node.me.index == index and node.alive and not node.pod.outsider:
                self.kill(node, half_open=half_open)

    def restart(
        self, index: int, *, gap: float = 0.0, half_open: bool = False, new_pod: bool = True
    ) -> None:
        self.crash(index, half_open=half_open)
        self.at(self.now + gap, lambda: self.start(index, new_pod=new_pod))

    def exit(self, node: Node, *, runs_for: float | None = None) -> None:
        """The agent's process ends by itself (or execs a workload that ``runs_for`` so long);
        then its pod completes and leaves DNS."""
        if node.alive:
            for instance in node.process:
                instance.exited = instance.exited or instance.alive
            self.kill(node)
            after = self.complete_delay if runs_for is None else runs_for
            node.pod.withdrawn_at = min(node.pod.withdrawn_at, self.now + after)
            self.answers.withdrawn(node.pod)

    def kill(self, node: Node, *, half_open: bool = False, alone: bool = False) -> None:
        """This agent process dies, every barrier instance of it (only ``node`` if ``alone``);
        its peers notice by FIN, or by keepalive if ``half_open``."""
        self.last_fault = self.now
        for instance in [node] if alone else list(node.process):
            if instance.alive:
                instance.truth.stop(instance.me.instance, self.now)
            instance.state = "gone"
            if instance.pod.node is instance:
                instance.pod.node = None
            if instance.pod.serving.get(key_of(instance.me)) is instance:
                del instance.pod.serving[key_of(instance.me)]
            for end in list(instance.channels.values()):
                end.open = False
                # A dead process's sockets are closed by its kernel; a vanished pod says nothing.
                self.fin(end, after=self.timing.keepalive if half_open else None)
            instance.channels.clear()

    def reset_sessions(self, index: int) -> None:
        """Every session of the live agents of ``index`` dies (a reset)."""
        self.last_fault = self.now
        for node in self.nodes:
            if node.me.index == index and node.alive:
                for end in list(node.channels.values()):
                    self.reset(end)

    def current(self, barrier: str = START_BARRIER) -> dict[int, Node]:
        """The latest started agent of this job for each index, in ``barrier``."""
        return {
            n.me.index: n
            for n in self.nodes
            if self.is_ours(n.me) and not n.pod.outsider and n.me.barrier == barrier
        }

    # --- sessions ------------------------------------------------------------------------------
    def send(self, end: End, message: Message) -> None:
        peer = end.peer
        assert peer is not None
        fate = self.on_send(end.node, peer.node, message) if self.on_send else Fate.DELIVER
        if fate is not Fate.DELIVER:
            self.last_fault = self.now
        if fate is Fate.SILENT:
            self.close(end)
            return
        if fate is Fate.LOST:
            self.reset(end)
            return
        extra = self.slow.get((end.node.me.index, peer.node.me.index), 0.0)
        end.last = max(self.departs(end.node.pod) + self.delay() + extra, end.last)
        self.at(end.last, lambda: self.on(peer.node.pod, lambda: self._deliver(peer, message)))
        if fate is Fate.AFTER:
            self.at(end.last, lambda: self.reset(end))

    def _deliver(self, end: End, message: Message) -> None:
        node, sender = end.node, end.peer
        if end.open and node.alive and sender is not None:
            if isinstance(message, Ack) and node.coordinator is not None:
                node.acks.add(sender.node.me.index)
                if node.acks >= node.coordinator.members and node.all_acked_at is None:
                    node.all_acked_at = self.now
            node.truth.delivered(end, message, self.now)
            node.messages += 1
            node.feed(Received(end.conn, message))
            node.after()

    def close(self, end: End) -> None:
        """This side closes (``Close``): its own reader ends, the peer reads EOF after the rest."""
        if end.open:
            end.open = False
            end.node.channels.pop(end.conn, None)
            self.post(end.node, self.now, functools.partial(self._lose, end, "closed"))
            self.fin(end)

    def fin(self, end: End, *, after: float | None = None) -> None:
        end.last = max(self.now + (self.delay() if after is None else after), end.last)
        peer = end.peer
        assert peer is not None
        self.at(
            end.last, lambda: self.on(peer.node.pod, lambda: self._eof(peer, "connection closed"))
        )

    def _eof(self, end: End, reason: str) -> None:
        if end.open:
            end.open = False
            end.node.channels.pop(end.conn, None)
            if end.node.alive:
                self._lose(end, reason)
                end.node.after()

    def reset(self, end: End) -> None:
        """The connection dies now: what is in flight is lost, both readers report it."""
        self.last_fault = self.now
        for e in (end, end.peer):
            if e is not None and e.open:
                e.open = False
                e.node.channels.pop(e.conn, None)
                # A session task posts _Opened before its _Lost: the loss never overtakes it.
                when = max(self.now + self.delay(), e.opened_at)
                self.post(e.node, when, functools.partial(self._lose, e, "reset"))

    def _lose(self, end: End, reason: str) -> None:
        """The core at ``end`` is told its session is gone (and the record says so)."""
        end.node.truth.lost(end, self.now)
        end.node.feed(Lost(end.conn, reason))

    # --- what the tests check ------------------------------------------------------------------
    def unsafe(self) -> list[str]:
        """Safety at instance level in every barrier (tests/sim/judge.py), plus what the sim saw
        go wrong on the way: a coordinator leaving before every ack and its linger bound, a
        core asking to be woken in the past, two attempts at one peer at once."""
        return self.violations + judge.unsafe(self)

    def describe(self) -> str:
        return judge.describe(self)
