"""The explorer's world (tests/sim/explore.py): the shipped cores of N pods with no clock of
their own and a network whose every step waits to be chosen.

What is in flight waits in ``pending`` (an attempt, a round, a probe, a dial, a hello heard) or in
a connection's ``queues``, until the search fires it; every effect is performed through the
shipped ``dispatch``, and every answer is judged by the shipped ``agent.core.answers``. The world
keeps the record the guarantee is judged from (truth.py, by safety.py): who heard whose hello,
the sessions and what was delivered on them, when each ended, every Release and verdict.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

from agent.config.parse import build_config
from agent.core.agent import Agent
from agent.core.answers import NameAttempt, dial_failed, failed_handshake, identity_failure
from agent.core.causes import Cause, Failure
from agent.core.discovery import ByService
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
from agent.core.roles import Coordinator, Member
from agent.core.timing import DEFAULT_TIMING
from agent.protocol.instance import instance_id
from agent.protocol.wire import Hello, Identity, Message, Role
from agent.topology.podfiles import PodFacts
from tests.sim.safety import violations
from tests.sim.truth import Truth

__all__ = ["Inst", "Move", "World"]

_LOST = "lost"  # a connection's end: what follows it in a queue is never delivered
_REFUSED = Cause.CONNECT_REFUSED
_NXDOMAIN = Failure("NXDOMAIN", Cause.NXDOMAIN)
# What waits for the world to answer it: an effect that goes out, or a contact heard.
Pending = Attempt | Sweep | ProbeAddress | Lookup | Dial | Contacted
# One step of the search: ("pending", i), ("deliver", end), ("tick", inst key),
# ("outsider", index, disagrees), ("restart", index, new pod).
Move = (
    tuple[Literal["pending"], int]
    | tuple[Literal["deliver"], tuple[int, int]]
    | tuple[Literal["tick"], int]
    | tuple[Literal["outsider", "restart"], int, bool]
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


@dataclass
class World:
    n: int
    mode: str
    restarts_left: int
    outsiders_left: int = 0
    now: float = 0.0
    insts: list[Inst] = field(default_factory=list)
    pods: dict[int, str] = field(default_factory=dict)  # index -> address of its current pod
    listed: set[str] = field(default_factory=set)  # addresses DNS lists for the Service
    pending: list[tuple[int, Pending]] = field(default_factory=list)
    #: (inst key, conn) -> (peer inst key, peer conn)
    links: dict[tuple[int, int], tuple[int, int]] = field(default_factory=dict)
    #: (inst key, conn) -> what is in flight to that end, in order
    queues: dict[tuple[int, int], list[Message | str]] = field(default_factory=dict)
    truth: Truth = field(default_factory=Truth)  # the record the checker judges (safety.py)
    serial: int = 0

    # --- pods ------------------------------------------------------------------------------------
    def start(self, index: int, address: str, *, outsider: bool = False, peers: int = 0) -> None:
        """An agent for ``index`` at ``address``; an ``outsider``'s address is never listed,
        and it may claim another peer count."""
        self.serial += 1
        n = peers or self.n
        me = Identity("job", "u", index, n, 29300, instance_id(self.serial, index))
        config = build_config(
            self.mode,
            {"peers": str(n), "index": str(index), "service": "s", "namespace": "ns"}
            | {"job_uid": "u", "timeout": "0"},
            PodFacts(hostname=f"job-{index}"),
        )
        agent = Agent(
            config, me=me, now=self.now, rand=_no_jitter, stays_for_acks=self.mode == "wait"
        )
        inst = Inst(len(self.insts), me, address, agent, outsider=outsider)
        self.insts.append(inst)
        linger = DEFAULT_TIMING.ack_linger if self.mode == "wait" else None
        self.truth.start(me, job_pod=not outsider, linger=linger, now=self.now)
        if not outsider:
            self.pods[index] = address
            self.listed.add(address)
        self.perform(inst, agent.begin(self.now))

    def current(self, address: str) -> Inst | None:
        for inst in reversed(self.insts):
            if inst.address == address:
                return inst if inst.alive else None
        return None

    def kill(self, inst: Inst) -> None:
        inst.alive = False
        self.truth.stop(inst.me.instance, self.now)
        for (key, conn), (peer, peer_conn) in list(self.links.items()):
            if key == inst.key:
                self.queues.setdefault((peer, peer_conn), []).append(_LOST)
                del self.links[(key, conn)]

    # --- effects ---------------------------------------------------------------------------------
    def perform(self, inst: Inst, effects: list[Effect]) -> None:
        effects_of = _Effects(self, inst)
        for effect in effects:
            dispatch(effects_of, effect)

    def feed(self, inst: Inst, event: Input) -> None:
        if inst.alive:
            self.perform(inst, inst.agent.handle(event, self.now))

    def _hello(self, src: Inst, address: str, target: int | None) -> ProbeResult:
        """``probes.probe``: connect, say hello, judge the reply with the shipped functions."""
        there = self.current(address)
        if there is None:
            return Unreached(Failure(f"connect to port {src.me.port}: refused", _REFUSED))
        hello = Hello(src.me, Role.PROBE, "n", released=src.agent.released)
        self.pending.append((there.key, Contacted(hello, src.address)))
        failure = identity_failure(src.me, there.me, expected_index=target)
        if failure is not None:
            return failed_handshake(failure)
        self.truth.hello_heard(src.me.instance, there.me.instance, address, self.now)
        return Reached(there.me.index, there.me.instance, there.agent.released)

    def fire(self, key: int, item: Pending) -> None:
        inst = self.insts[key]
        if not inst.alive:
            return
        if isinstance(item, Contacted):
            self.feed(inst, item)
        else:
            dispatch(_Effects(self, inst, firing=True), item)

    def answer_sweep(self, inst: Inst) -> None:
        self.feed(inst, Swept(Resolution(tuple(sorted(self.listed)))))

    def answer_probe(self, inst: Inst, address: str) -> None:
        self.feed(inst, AddressProbed(address, self._hello(inst, address, None)))

    def answer_attempt(self, inst: Inst, attempt: Attempt) -> None:
        """Its name lists its current pod's address only (or the core reuses the address that
        refused a moment ago, which may be an old pod's)."""
        address = attempt.addresses[0] if attempt.addresses else self.pods[attempt.index]
        name = NameAttempt(attempt.index, attempt.instance, Resolution((address,)))
        name.probed(address, self._hello(inst, address, attempt.index))
        self.feed(inst, name.outcome())

    def answer_lookup(self, inst: Inst, lookup: Lookup) -> None:
        """Its name lists its current pod's address only."""
        address = self.pods.get(lookup.index)
        found = Resolution((address,)) if address is not None else Resolution(failure=_NXDOMAIN)
        self.feed(inst, LookedUp(lookup.index, found))

    def dial(self, src: Inst, addresses: tuple[str, ...] = ()) -> None:
        address = addresses[0] if addresses else self.pods[0]
        server = self.current(address)
        if server is None or not server.alive:
            refused = f"{address}: connect to port {src.me.port}: refused"
            self.feed(src, dial_failed(Resolution((address,)), [refused], (address,)))
            return
        mine, theirs = (src.key, src.next_conn), (server.key, server.next_conn)
        src.next_conn += 1
        server.next_conn += 1
        self.links[mine], self.links[theirs] = theirs, mine
        self.truth.session(
            theirs,
            client=src.me.instance,
            server=server.me.instance,
            address=src.address,
            now=self.now,
        )
        hello = Hello(src.me, Role.MEMBER, "n", released=src.agent.released)
        reply = Hello(server.me, Role.REPLY, "n", released=server.agent.released)
        self.feed(server, Contacted(hello, src.address))
        self.feed(server, Opened(theirs[1], hello, False, src.address))
        self.feed(src, Contacted(reply, server.address, listed=True))
        self.feed(src, Opened(mine[1], reply, True, server.address))

    def deliver(self, end: tuple[int, int]) -> None:
        message = self.queues[end].pop(0)
        inst = self.insts[end[0]]
        if message == _LOST:
            self.links.pop(end, None)
            if inst.alive:
                self.truth.lost(end, self.now)
            self.feed(inst, Lost(end[1], "reset"))
            return
        assert not isinstance(message, str)
        if inst.alive:
            self.truth.delivered(end, message, self.now)
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
            self.start(index, address)

    def unsafe(self) -> list[str]:
        """The guarantee for the Job's pods, judged from the world's record (safety.py); since
        they all agree on the job, none of them may abort (only an outsider disagrees)."""
        return violations(self.n, self.truth)

    def fingerprint(self) -> object:
        rows = []
        for inst in self.insts:
            agent, side = inst.agent, inst.agent.side
            reach = tuple((p.reached, p.instance, p.newest, p.in_flight) for p in agent.reach.peers)
            state: tuple[object, ...] = ()
            if isinstance(side, Coordinator):
                state = (side.view, tuple(sorted(side._matching)), tuple(sorted(side._acked)))
            elif isinstance(side, Member):
                state = (side.conn, side.view, side._sent, side._released_view, side._peer_says)
            service = agent.discovery
            rows.append(
                (
                    inst.alive,
                    agent.finished,
                    repr(agent.verdict),
                    reach,
                    state,
                    isinstance(service, ByService)
                    and (
                        service.published,
                        frozenset(service.book._identified),
                        service.rounds._asking,
                    ),
                )
            )
        pending = tuple(sorted(repr(p) for p in self.pending))
        queues = tuple(sorted((k, tuple(map(repr, v))) for k, v in self.queues.items() if v))
        return (tuple(rows), pending, queues, self.restarts_left, self.outsiders_left)


@dataclass
class _Effects:
    """``inst``'s effects in ``world`` (an ``EffectHandler``): sends and closes at once; the
    attempts, rounds, probes and dials wait in ``world.pending`` until the search fires them
    (``firing``), as it fires contacts heard."""

    world: World
    inst: Inst
    firing: bool = False

    def _deferred(self, effect: Pending) -> bool:
        if not self.firing:
            self.world.pending.append((self.inst.key, effect))
        return not self.firing

    def attempt(self, effect: Attempt) -> None:
        if not self._deferred(effect):
            self.world.answer_attempt(self.inst, effect)

    def sweep(self, effect: Sweep) -> None:
        if not self._deferred(effect):
            self.world.answer_sweep(self.inst)

    def probe_address(self, effect: ProbeAddress) -> None:
        if not self._deferred(effect):
            self.world.answer_probe(self.inst, effect.address)

    def lookup(self, effect: Lookup) -> None:
        if not self._deferred(effect):
            self.world.answer_lookup(self.inst, effect)

    def dial(self, effect: Dial) -> None:
        if not self._deferred(effect):
            self.world.dial(self.inst, effect.addresses)

    def send(self, effect: Send) -> None:
        self.world.truth.sent(self.inst.me.instance, effect.message, self.world.now)
        if (link := self.world.links.get((self.inst.key, effect.conn))) is not None:
            self.world.queues.setdefault(link, []).append(effect.message)

    def close(self, effect: Close) -> None:
        world = self.world
        if (link := world.links.pop((self.inst.key, effect.conn), None)) is not None:
            world.truth.closed((self.inst.key, effect.conn), world.now)
            world.queues.setdefault(link, []).append(_LOST)
            world.feed(self.inst, Lost(effect.conn, "closed"))

    def report(self, effect: Report) -> None:
        pass

    def released(self, effect: Released) -> None:
        if self.inst.released_at is None:
            self.inst.released_at = self.world.now
        self.world.truth.verdict(self.inst.me.instance, effect, self.world.now)

    def aborted(self, effect: Aborted) -> None:
        self.world.truth.verdict(self.inst.me.instance, effect, self.world.now)

    def finish(self, effect: Finish) -> None:
        self.world.truth.ended_wait(self.inst.me.instance, self.world.now)
        if self.world.mode != "sidecar":  # a sidecar serves on
            self._exit()
            if self.world.mode == "wait":  # its pod completes and leaves DNS
                self.world.listed.discard(self.inst.address)

    def fail(self, effect: Fail) -> None:
        self.world.truth.ended_wait(self.inst.me.instance, self.world.now)
        self._exit()

    def _exit(self) -> None:
        self.world.kill(self.inst)  # the process exits
