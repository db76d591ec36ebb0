"""The explorer's world (tests/sim/explore.py): the shipped cores of N pods with no clock of
their own and a network whose every step waits to be chosen.

What is in flight waits in ``pending`` (an attempt, a round, a probe, a dial, a hello heard) or in
a connection's ``queues``, until the search fires it; every effect is performed through the
shipped ``dispatch``, and every answer is judged by the shipped ``agent.core.answers``. The world
keeps the record the guarantee is judged from (truth.py, by safety.py), one per barrier: who
heard whose hello, the sessions and what was delivered on them, when each ended, every Release
and verdict.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

from agent.commands.leave import exit_identity
from agent.commands.named import named_identity
from agent.config.model import Config, Outputs, ProbeKind
from agent.core.agent import Agent
from agent.core.answers import (
    NameAttempt,
    blind,
    dial_failed,
    failed_handshake,
    identity_failure,
)
from agent.core.causes import Cause, Failure
from agent.core.effects import (
    Attempt,
    Effect,
    Lookup,
    dispatch,
)
from agent.core.inputs import (
    AddressProbed,
    Contacted,
    Input,
    LookedUp,
    Lost,
    Opened,
    ProbeResult,
    Reached,
    Received,
    Resolution,
    Swept,
    Unreached,
)
from agent.core.timing import DEFAULT_TIMING
from agent.protocol.instance import instance_id
from agent.protocol.routing import key_of, route
from agent.protocol.wire import Hello, Identity, Message, Role
from tests.sim import modes, worldcheck
from tests.sim.truth import Truth
from tests.sim.worldeffects import LOST, Effects, Pending

__all__ = ["Inst", "Move", "World"]

_REFUSED = Cause.CONNECT_REFUSED
_NXDOMAIN = Failure("NXDOMAIN", Cause.NXDOMAIN)
# One step of the search: ("pending", i), ("deliver", end), ("tick", inst key),
# ("outsider", index, disagrees), ("restart", index, new pod), ("list", index, _): the
# Service's name lists the pod its own name lists already.
Move = (
    tuple[Literal["pending"], int]
    | tuple[Literal["deliver"], tuple[int, int]]
    | tuple[Literal["tick"], int]
    | tuple[Literal["outsider", "restart", "list", "workload"], int, bool]
)


def _no_jitter() -> float:
    return 0.5


@dataclass
class Inst:
    """One agent process."""

    key: int
    me: Identity
    address: str
    agent: Agent
    alive: bool = True
    next_conn: int = 0
    released_at: float | None = None
    outsider: bool = False  # in a pod the Service does not select: DNS never lists it
    process: int = -1  # the key of its process's first instance (its start barrier's)

    @property
    def barrier(self) -> str:
        return self.me.barrier


@dataclass
class World:
    n: int
    mode: str
    restarts_left: int
    outsiders_left: int = 0
    probe: str = "tcp"  # every pod's --probe
    #: a new pod's own name lists it at once, the Service's name only by a move of its own
    service_lags: bool = False
    #: every instance starts at the same nanosecond: the tie-break alone orders them
    same_start: bool = False
    now: float = 0.0
    insts: list[Inst] = field(default_factory=list)
    pods: dict[int, str] = field(default_factory=dict)  # index -> address of its current pod
    listed: set[str] = field(default_factory=set)  # addresses DNS lists for the Service
    lagging: set[str] = field(default_factory=set)  # pods' addresses the Service lists later
    pending: list[tuple[int, Pending]] = field(default_factory=list)
    #: (inst key, conn) -> (peer inst key, peer conn)
    links: dict[tuple[int, int], tuple[int, int]] = field(default_factory=dict)
    #: (inst key, conn) -> what is in flight to that end, in order
    queues: dict[tuple[int, int], list[Message | str]] = field(default_factory=dict)
    #: the record the checker judges (safety.py), one per barrier namespace
    truths: dict[str, Truth] = field(default_factory=dict)
    serial: int = 0

    # --- pods ------------------------------------------------------------------------------------
    def start(self, index: int, address: str, *, outsider: bool = False, peers: int = 0) -> None:
        """An agent for ``index`` at ``address``; an ``outsider``'s address is never listed,
        and it may claim another peer count."""
        self.serial += 1
        n = peers or self.n
        # the tie-break's low 10 bits hold the index (as tests/sim/draws.py draws it)
        started, tag = (0, self.serial << 10 | index) if self.same_start else (self.serial, index)
        me = Identity("job", "u", index, n, 29300, instance_id(started, tag))
        config = modes.config_for(self.mode, me, self.probe)
        inst = self._begin(me, address, config, modes.stays_for_acks(self.mode), -1, outsider)
        if not outsider:
            self.pods[index] = address
            (self.lagging if self.service_lags else self.listed).add(address)
        self.perform(inst, inst.agent.begin(self.now))

    def _begin(
        self, me: Identity, address: str, config: Config, stays: bool, process: int, out: bool
    ) -> Inst:
        agent = Agent(config, me=me, now=self.now, rand=_no_jitter, stays_for_acks=stays)
        linger = DEFAULT_TIMING.ack_linger if stays else None
        instances = config.probe.says_hello
        self.truth_of(me.barrier).start(
            me, job_pod=not out, linger=linger, now=self.now, instances=instances
        )
        key = len(self.insts)
        inst = Inst(key, me, address, agent, outsider=out, process=key if process < 0 else process)
        self.insts.append(inst)
        return inst

    def workload_ends(self, start: Inst) -> None:
        """``run --exit-barrier``: ``start``'s workload has ended, its exit barrier begins on the
        same port (``agent.commands.leave``); ``named``: a client of the pod asks for barrier
        ``data``, one more instance on the port (``agent.commands.named``)."""
        config = start.agent.config
        if self.mode == "exit":
            timeout, me, stays = config.exit_timeout, exit_identity(start.me, 0), True
        else:
            timeout, me, stays = None, named_identity(start.me, "data"), False
        later = dataclasses.replace(config, timeout=timeout, outputs=Outputs())
        inst = self._begin(me, start.address, later, stays, start.process, False)
        self.perform(inst, inst.agent.begin(self.now))

    def serving(self, address: str, hello: Identity) -> Inst | None:
        """The instance a connection saying ``hello`` reaches at ``address``: the mux's rule."""
        live = {key_of(i.me): i for i in self.insts if i.address == address and i.alive}
        key = route(hello, live)
        return None if key is None else live[key]

    def truth_of(self, barrier: str) -> Truth:
        return self.truths.setdefault(barrier, Truth())

    def kill(self, inst: Inst) -> None:
        """Its process dies: every barrier instance of it."""
        dying = {i.key for i in self.insts if i.process == inst.process}
        for key in dying:
            if self.insts[key].alive:
                me = self.insts[key].me
                self.truth_of(me.barrier).stop(me.instance, self.now)
            self.insts[key].alive = False
        for (key, conn), (peer, peer_conn) in list(self.links.items()):
            if key in dying:
                self.queues.setdefault((peer, peer_conn), []).append(LOST)
                del self.links[(key, conn)]

    # --- effects ---------------------------------------------------------------------------------
    def perform(self, inst: Inst, effects: list[Effect]) -> None:
        effects_of = Effects(self, inst)
        for effect in effects:
            dispatch(effects_of, effect)

    def feed(self, inst: Inst, event: Input) -> None:
        """The runner's loop: the event handled, then what is due now (``_run`` polls after
        every event it drains: a released member finishes at once, not at a timer)."""
        if inst.alive:
            self.perform(inst, inst.agent.handle(event, self.now))
        if inst.alive:
            self.perform(inst, inst.agent.poll(self.now))

    def _hello(
        self, src: Inst, address: str, target: int | None, agents: bool = False
    ) -> ProbeResult:
        """``probes.probe``: connect, say hello, judge the reply with the shipped functions
        (with the pod's ``--probe`` unless ``agents`` asks for the agent's hello)."""
        if not (agents or src.agent.config.probe.says_hello):
            return self._blind(src, address)
        there = self.serving(address, src.me)
        if there is None:
            return Unreached(Failure(f"connect to port {src.me.port}: refused", _REFUSED))
        hello = Hello(src.me, Role.PROBE, "n", released=src.agent.released)
        self.pending.append((there.key, Contacted(hello, src.address)))
        failure = identity_failure(src.me, there.me, expected_index=target)
        if failure is not None:
            return failed_handshake(failure)
        self.truth_of(src.barrier).hello_heard(
            src.me.instance, there.me.instance, address, self.now
        )
        return Reached(there.me.index, there.me.instance, there.agent.released)

    def _blind(self, src: Inst, address: str) -> ProbeResult:
        """A probe that says no hello (``probes.probe``): ``dns`` asks nothing; ``icmp`` and
        ``tcp:PORT`` are answered by a pod that is there, whatever its agent does."""
        kind = src.agent.config.probe.kind
        index = next((i for i, a in self.pods.items() if a == address), None)
        if index is None and kind is not ProbeKind.DNS:
            gone = Failure("no echo reply (timeout)", Cause.NO_ECHO)
            if kind is ProbeKind.TCP:
                port = src.agent.config.probe.port
                gone = Failure(f"connect to port {port}: refused", _REFUSED)
            return blind(gone)
        # the pod, read per index, under the latest agent of this barrier that ran in it, else
        # its latest agent process (as tests/sim/tasks.py names it)
        ran = [i for i in reversed(self.insts) if i.address == address]
        speaker = next(iter([i for i in ran if i.barrier == src.barrier] or ran), None)
        if index is not None and speaker is not None:
            truth = self.truth_of(src.barrier)
            if speaker.me.instance not in truth.processes:
                truth.start(speaker.me, job_pod=True, linger=None, now=self.now, instances=False)
            truth.hello_heard(src.me.instance, speaker.me.instance, address, self.now)
        return blind(None)

    def fire(self, key: int, item: Pending) -> None:
        inst = self.insts[key]
        if not inst.alive:
            return
        if isinstance(item, Contacted):
            self.feed(inst, item)
        else:
            dispatch(Effects(self, inst, firing=True), item)

    def answer_sweep(self, inst: Inst) -> None:
        self.feed(inst, Swept(Resolution(tuple(sorted(self.listed)))))

    def answer_probe(self, inst: Inst, address: str) -> None:
        self.feed(inst, AddressProbed(address, self._hello(inst, address, None)))

    def answer_attempt(self, inst: Inst, attempt: Attempt) -> None:
        """Its name lists its current pod's address only (or the core reuses the address that
        refused a moment ago, which may be an old pod's)."""
        address = attempt.addresses[0] if attempt.addresses else self.pods.get(attempt.index)
        if address is None:  # an index of no pod (an outsider's other peer count): NXDOMAIN
            self.feed(inst, NameAttempt(attempt.index, "", Resolution(failure=_NXDOMAIN)).outcome())
            return
        name = NameAttempt(attempt.index, attempt.instance, Resolution((address,)))
        name.probed(address, self._hello(inst, address, attempt.index, attempt.hello))
        self.feed(inst, name.outcome())

    def answer_lookup(self, inst: Inst, lookup: Lookup) -> None:
        """Its name lists its current pod's address only."""
        address = self.pods.get(lookup.index)
        found = Resolution((address,)) if address is not None else Resolution(failure=_NXDOMAIN)
        self.feed(inst, LookedUp(lookup.index, found))

    def dial(self, src: Inst, addresses: tuple[str, ...] = (), index: int = 0) -> None:
        address = addresses[0] if addresses else self.pods[index]
        server = self.serving(address, src.me)
        if server is None or not server.alive:
            refused = f"{address}: connect to port {src.me.port}: refused"
            self.feed(src, dial_failed(Resolution((address,)), [refused], [Cause.CONNECT_REFUSED]))
            return
        hello = Hello(src.me, Role.MEMBER, "n", released=src.agent.released)
        if server.barrier != src.barrier:  # routed to a barrier not its own: a stranger
            self.feed(server, Contacted(hello, src.address))
            failure = identity_failure(src.me, server.me, expected_index=index)
            why = f"{address}: {failure.reason if failure else 'stranger'}"
            self.feed(src, dial_failed(Resolution((address,)), [why]))
            return
        mine, theirs = (src.key, src.next_conn), (server.key, server.next_conn)
        src.next_conn += 1
        server.next_conn += 1
        self.links[mine], self.links[theirs] = theirs, mine
        self.truth_of(server.barrier).session(
            theirs,
            client=src.me.instance,
            server=server.me.instance,
            address=src.address,
            now=self.now,
        )
        reply = Hello(server.me, Role.REPLY, "n", released=server.agent.released)
        self.feed(server, Contacted(hello, src.address))
        self.feed(server, Opened(theirs[1], hello, False, src.address))
        self.feed(src, Contacted(reply, server.address, listed=True))
        self.feed(src, Opened(mine[1], reply, True, server.address))

    def deliver(self, end: tuple[int, int]) -> None:
        message = self.queues[end].pop(0)
        inst = self.insts[end[0]]
        truth = self.truth_of(inst.barrier)
        if message == LOST:
            self.links.pop(end, None)
            if inst.alive:
                truth.lost(end, self.now)
            self.feed(inst, Lost(end[1], "reset"))
            return
        assert not isinstance(message, str)
        if inst.alive:
            truth.delivered(end, message, self.now)
        self.feed(inst, Received(end[1], message))

    def tick(self, key: int) -> None:
        inst = self.insts[key]
        self.now = max(self.now, inst.agent.next_wakeup())
        self.perform(inst, inst.agent.poll(self.now))

    # --- the search ------------------------------------------------------------------------------
    def moves(self, horizon: float) -> Iterator[Move]:
        for k in range(len(self.pending)):
            yield ("pending", k)
        for end, queue in self.queues.items():
            if queue:
                yield ("deliver", end)
        quiet = not self.pending and not any(self.queues.values())
        for inst in self.insts:  # timers fire once what is in flight has landed
            if quiet and inst.alive and inst.agent.next_wakeup() <= horizon:
                yield ("tick", inst.key)
        if self.outsiders_left:  # claiming any index, agreeing or not on the peer count
            for index in range(self.n):
                yield ("outsider", index, False)
                yield ("outsider", index, True)
        for index, address in self.pods.items():
            if address in self.lagging:
                yield ("list", index, False)
        for inst in worldcheck.working(self):
            yield ("workload", inst.me.index, False)
        if self.restarts_left:  # a pod restarts only while its barrier is open
            for inst in self.insts:
                if inst.alive and inst.released_at is None and not inst.outsider:
                    yield ("restart", inst.me.index, False)
                    yield ("restart", inst.me.index, True)

    def apply(self, move: Move) -> None:
        if move[0] == "pending":
            key, item = self.pending.pop(move[1])
            self.fire(key, item)
        elif move[0] == "deliver":
            self.deliver(move[1])
        elif move[0] == "tick":
            self.tick(move[1])
        elif move[0] == "workload":
            self.workload_ends(next(i for i in worldcheck.working(self) if i.me.index == move[1]))
        elif move[0] == "list":
            address = self.pods[move[1]]
            self.lagging.discard(address)
            self.listed.add(address)
        elif move[0] == "outsider":
            index, disagrees = move[1], move[2]
            self.outsiders_left -= 1
            address = f"10.99.0.{self.serial}"
            self.start(index, address, outsider=True, peers=self.n + 1 if disagrees else 0)
        else:
            index, new_pod = move[1], move[2]
            self.restarts_left -= 1
            for inst in self.insts:
                if inst.me.index == index and inst.alive and not inst.outsider:
                    self.kill(inst)
            address = f"10.{index}.0.{self.serial}" if new_pod else self.pods[index]
            if new_pod:
                self.listed.discard(self.pods[index])
                self.lagging.discard(self.pods[index])
            self.start(index, address)

    def unsafe(self) -> list[str]:
        return worldcheck.unsafe(self)

    def fingerprint(self) -> object:
        return worldcheck.fingerprint(self)
