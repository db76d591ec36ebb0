"""The one async loop: wires the pure cores (reach, barrier) to DNS, probes and TCP.

Tasks (``contacts``) do only I/O and post what happened into one queue; the loop alone changes
state, so the cores never see two events at once. Side effects (resolver, clock, randomness) are
injected with real defaults.
"""

from __future__ import annotations

import math
import os
import random
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import anyio
import anyio.abc
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from agent import listener
from agent.barrier import Aborted, Action, Close, Connect, Coordinator, Member, Released, Send
from agent.config import Config
from agent.contacts import (
    NO_CONN,
    AddressProbed,
    Attempted,
    Contacts,
    Lost,
    Note,
    Nudge,
    Opened,
    Posted,
    Received,
    Swept,
)
from agent.errors import BarrierAborted, BarrierTimeout, ConfigError
from agent.events import Event, Reporter
from agent.hints import hints_for
from agent.icmp import open_icmp_socket
from agent.limits import MAX_IN_FLIGHT, ensure_fd_limit
from agent.probequeue import ProbeQueue
from agent.probes import ProbeResult
from agent.reach import Reach
from agent.resolver import Resolution, Resolver
from agent.sweep import Sweep
from agent.wire import Identity, Message

__all__ = ["Deps", "Outcome", "PeerInfo", "identity_of", "serve_and_wait"]

PROGRESS_EVERY = 5.0
ABORT_LINGER = 3.0


@dataclass(frozen=True)
class PeerInfo:
    index: int
    hostname: str
    fqdn: str
    addresses: tuple[str, ...]


@dataclass(frozen=True)
class Outcome:
    how: str
    elapsed: float
    peers: tuple[PeerInfo, ...]


@dataclass(frozen=True)
class Deps:
    """Side effects, injected so tests can replace any of them."""

    resolve: Callable[[str], Awaitable[Resolution]] | None = None  # default: Resolver(config)
    clock: Callable[[], float] = time.monotonic
    rand: Callable[[], float] = random.random


#: this process's instance: a pod that restarts says hello with a new one
INSTANCE = os.urandom(8).hex()


def identity_of(config: Config) -> Identity:
    t = config.topology
    return Identity(t.job, config.job_uid, t.index, t.peers, config.port, INSTANCE)


@dataclass
class _Loop:
    config: Config
    deps: Deps
    report: Reporter
    me: Identity
    tg: anyio.abc.TaskGroup
    start: float
    reach: Reach
    contacts: Contacts = field(init=False)
    #: the addresses of bulk rounds and pushes, probed by a bounded pool of workers
    probes: ProbeQueue = field(init=False)
    coordinator: Coordinator | None = None
    member: Member | None = None
    #: bulk discovery, when the probe's hello can tell which peer answers (the tcp probe)
    sweep: Sweep | None = None
    addresses: dict[int, tuple[str, ...]] = field(default_factory=dict)
    aborted_at: float = math.inf
    refused_logged_at: float = -math.inf
    refused_unlogged: int = 0
    by_name_reported: bool = False

    @property
    def verdict(self) -> Released | Aborted | None:
        side = self.coordinator or self.member
        return side.verdict if side else None

    def elapsed(self, now: float) -> float:
        return now - self.start

    # --- the loop's own steps ----------------------------------------------------------------
    async def act(self, actions: list[Action], now: float) -> None:
        sends: list[tuple[int, Message]] = []
        for action in actions:
            if isinstance(action, Send):
                sends.append((action.conn, action.message))
                continue
            if sends:  # consecutive sends go out together, before what comes after them
                await self.contacts.send(sends)
                sends = []
            if isinstance(action, Close):
                await self.contacts.close(action.conn)
            elif isinstance(action, Connect):
                self.tg.start_soon(self.contacts.connect_coordinator)
            elif isinstance(action, Released):
                counts = dict(self.contacts.counts)
                done = ", ".join(
                    f"{n} {what.replace('_', ' ')}" for what, n in sorted(counts.items())
                )
                self.report(
                    Event(
                        "released",
                        f"barrier released: {action.how} after {self.elapsed(now):.3f}s ({done})",
                        {"elapsed": round(self.elapsed(now), 3), **counts},
                    )
                )
            elif isinstance(action, Aborted):
                self.aborted_at = now
                self.report(Event("aborted", f"barrier aborted: {action.reason}"))
        if sends:
            await self.contacts.send(sends)

    async def handle(self, item: Posted, now: float) -> None:
        if isinstance(item, Note):
            self.note(item.event, now)
        elif isinstance(item, Nudge):
            try:
                await self.nudged(item, now)
            finally:
                if item.handled is not None:
                    item.handled.set()
        elif isinstance(item, Attempted):
            if not item.result.ok and not item.result.disagrees:
                self.reach.failed(item.index, item.result.reason, now)
            else:
                if self.sweep is not None and item.result.ok:  # known now: no round re-probes it
                    self.sweep.probed(item.address, reached=True)
                await self.reached(item.index, item.result, item.address, item.addresses, now)
        elif isinstance(item, Swept):
            self.swept(item.resolution, now)
        elif isinstance(item, AddressProbed):
            await self.address_probed(item, now)
        elif isinstance(item, Opened):
            if self.coordinator is not None:
                await self.act(self.coordinator.joined(item.conn, item.hello, now), now)
            elif self.member is not None:
                await self.act(self.member.opened(item.conn, now), now)
        elif isinstance(item, Received):
            side = self.coordinator
            actions = (
                side.received(item.conn, item.message, now)
                if side is not None
                else self.member.received(item.message, now)
                if self.member
                else []
            )
            await self.act(actions, now)
        elif isinstance(item, Lost):
            if self.coordinator is not None:
                await self.act(self.coordinator.closed(item.conn, now), now)
            elif self.member is not None and item.conn in (NO_CONN, self.member.conn):
                await self.act(self.member.connect_failed(item.reason, now), now)

    def note(self, event: Event, now: float) -> None:
        """Refusals are logged at most once per PROGRESS_EVERY: a loop of bad contacts must not
        flood the log (the count of those not shown goes with the next one)."""
        if event.kind != "refused":
            self.report(event)
        elif now >= self.refused_logged_at + PROGRESS_EVERY:
            more = f" (and {self.refused_unlogged} more)" if self.refused_unlogged else ""
            self.report(Event(event.kind, event.message + more, event.fields))
            self.refused_logged_at, self.refused_unlogged = now, 0
        else:
            self.refused_unlogged += 1

    async def nudged(self, item: Nudge, now: float) -> None:
        """Peer ``item.index`` said hello: it is up, so probe it now rather than after backoff.
        A new instance of a peer reached before must be reached again, and our arrival (which
        counted the old one) is withdrawn until it is."""
        if self.verdict is None and self.reach.restarted(item.index, item.instance):
            self.reach.forget(item.index, now)
            self.report(
                Event(
                    "restarted",
                    f"{self.config.topology.display(item.index)} restarted: reaching its new "
                    "instance before counting it again",
                    {"peer": item.index},
                )
            )
            if self.sweep is not None:
                self.sweep.resume(now)
            side = self.coordinator or self.member
            if side is not None:
                await self.act(side.withdraw(now), now)
        if self.sweep is None or self.reach.is_scheduled(item.index):  # asked for by name
            self.reach.nudge(item.index, now)
        elif not self.reach.peers[item.index].reached and self.sweep.pushed(item.address, now):
            self.probes.add(item.address, pushed=True)

    def swept(self, resolution: Resolution, now: float) -> None:
        assert self.sweep is not None
        if resolution.problem:
            self.sweep.failed(resolution.problem, now)
            return
        for address in self.sweep.answered(
            resolution.addresses, now, truncated=resolution.truncated
        ):
            self.probes.add(address)
        self.ask_by_name()

    def ask_by_name(self) -> None:
        """A cut-short Service answer (thousands of pods) and its probes are done: the peers
        still unreached may be among those it left out, so each is asked for by name."""
        assert self.sweep is not None
        if not self.sweep.ask_by_name():
            return
        lacking = [p.index for p in self.reach.missing()]
        if not self.by_name_reported:
            self.by_name_reported = True
            self.report(
                Event(
                    "truncated",
                    f"the Service's DNS answer is cut short at {len(self.sweep.published)} "
                    f"addresses: asking for the {len(lacking)} peers not reached by name",
                    {"listed": len(self.sweep.published), "by_name": len(lacking)},
                )
            )
        self.reach.schedule(lacking)

    async def address_probed(self, item: AddressProbed, now: float) -> None:
        assert self.sweep is not None
        result = item.result
        if result.ok and result.index is not None and result.index < self.me.peers:
            self.sweep.probed(item.address, reached=True)
            await self.reached(result.index, result, item.address, (item.address,), now)
        else:
            self.sweep.probed(item.address, reached=False, reason=result.reason)
            if result.disagrees:
                await self.reached(result.index or 0, result, item.address, (), now)
        self.ask_by_name()

    async def reached(
        self,
        index: int,
        result: ProbeResult,
        address: str,
        addresses: tuple[str, ...],
        now: float,
    ) -> None:
        """Peer ``index`` answered at ``address`` (or disagrees with us about the job)."""
        if result.disagrees:
            side = self.coordinator or self.member
            if side is None:
                raise BarrierAborted(result.reason)
            await self.act(side.abort(result.reason, now), now)
            return
        if self.reach.peers[index].reached:
            return
        self.reach.succeeded(index, address, now, result.instance)
        self.addresses[index] = addresses
        self.report(
            Event(
                "reached",
                f"reached {self.config.topology.display(index)} at {address} "
                f"({self.config.probe}) after {self.elapsed(now):.3f}s",
                {
                    "peer": index,
                    "address": address,
                    "probe": str(self.config.probe),
                    "elapsed": round(self.elapsed(now), 3),
                },
            )
        )
        if result.released:
            side = self.coordinator or self.member
            if side is not None:
                await self.act(side.peer_released(now), now)
        if self.reach.done:
            if self.sweep is not None:
                self.sweep.stop()
            self.report(
                Event(
                    "reached-all",
                    f"reached all {self.me.peers} peers",
                    {"elapsed": round(self.elapsed(now), 3)},
                )
            )
            if self.coordinator is not None:
                await self.act(self.coordinator.self_arrived(now), now)
            elif self.member is not None:
                await self.act(self.member.reached_all(now), now)

    def missing_reasons(self) -> list[tuple[int, str]]:
        out = [(p.index, self.reason(p.index)) for p in self.reach.missing()]
        if not out and self.coordinator is not None:
            out = [(i, f"barrier: {why}") for i, why in self.coordinator.waiting_for()]
        elif not out and self.member is not None:
            out = [(0, f"barrier: {self.member.last_problem}")]
        return out

    def reason(self, index: int) -> str:
        """Why peer ``index`` is not reached yet."""
        if self.sweep is None or self.reach.is_scheduled(index):
            return self.reach.peers[index].reason
        if self.sweep.problem:  # the Service name itself does not resolve
            return self.sweep.problem
        why = f"not in DNS: not among the {len(self.sweep.published)} addresses of the Service"
        if self.sweep.unidentified:
            shown = list(self.sweep.unidentified.items())[:3]
            why += "; unanswered: " + ", ".join(f"{a} ({r})" for a, r in shown)
        return why

    def progress(self, now: float) -> None:
        missing = self.missing_reasons()
        names = ", ".join(
            f"{self.config.topology.hostname(i)} ({why})" for i, why in missing[:8]
        ) + (f", … {len(missing) - 8} more" if len(missing) > 8 else "")
        reached = self.me.peers - len(self.reach.missing())
        self.report(
            Event(
                "progress",
                f"waiting {self.elapsed(now):.0f}s: {reached}/{self.me.peers} peers reached; "
                f"missing: {names}",
                {"reached": reached, "missing": [i for i, _ in missing]},
            )
        )

    def timeout(self) -> BarrierTimeout:
        missing = self.missing_reasons()
        lines = [f"{self.config.topology.display(i)}: {why}" for i, why in missing]
        reasons = [self.reason(p.index) if not p.reached else "" for p in self.reach.peers]
        return BarrierTimeout(
            f"timed out after {self.config.timeout:g}s; {len(missing)} peer(s) missing",
            missing=lines,
            hints=hints_for(self.config.topology, self.config.pod_resolv, reasons),
        )

    def outcome(self, now: float) -> Outcome:
        t = self.config.topology
        peers = tuple(
            PeerInfo(i, t.hostname(i), t.display(i), self.addresses.get(i, ())) for i in t.indices
        )
        how = self.verdict.how if isinstance(self.verdict, Released) else "reached all peers"
        return Outcome(how, self.elapsed(now), peers)


def _check_probe(config: Config) -> None:
    if config.probe.kind == "icmp":
        sock, _ = open_icmp_socket()
        sock.close()


def _listen(config: Config) -> socket.socket:
    try:
        return listener.listen(config.listen, config.port)
    except OSError as exc:
        raise ConfigError(
            [
                f"--port / PEER_AGENT_PORT: cannot listen on port {config.port}: "
                f"{exc.strerror or exc}"
            ]
        ) from None


async def serve_and_wait(
    config: Config,
    *,
    report: Reporter,
    deps: Deps = Deps(),
    after_release: Callable[[Outcome], Awaitable[None]] | None = None,
) -> Outcome:
    """Listen, reach every peer, pass the barrier; then ``after_release`` (sidecar), still serving.

    Raises BarrierTimeout (exit 3) or BarrierAborted (exit 4).
    """
    _check_probe(config)
    ensure_fd_limit(config.topology.peers)
    resolve = deps.resolve
    if resolve is None:
        servers = config.dns_servers or tuple((s, 53) for s in config.resolv.nameservers)
        try:
            resolve = Resolver(servers).addresses
        except ValueError as exc:
            raise ConfigError([f"--dns-server / PEER_AGENT_DNS_SERVER: {exc}"]) from None
    with _listen(config) as port:
        return await _serve(config, port, resolve, report, deps, after_release)


async def _serve(
    config: Config,
    port: socket.socket,
    resolve: Callable[[str], Awaitable[Resolution]],
    report: Reporter,
    deps: Deps,
    after_release: Callable[[Outcome], Awaitable[None]] | None,
) -> Outcome:
    send: MemoryObjectSendStream[Posted]
    receive: MemoryObjectReceiveStream[Posted]
    send, receive = anyio.create_memory_object_stream[Posted](math.inf)
    start = deps.clock()
    async with send, receive, anyio.create_task_group() as tg:
        me = identity_of(config)
        # Bulk discovery needs the hello to say who answers; other probes resolve each name.
        bulk = config.probe.kind == "tcp" and config.probe.port is None
        loop = _Loop(
            config=config,
            deps=deps,
            report=report,
            me=me,
            tg=tg,
            start=start,
            reach=Reach(
                config.topology.peers,
                now=start,
                rand=deps.rand,
                max_in_flight=MAX_IN_FLIGHT,
                scheduled={config.topology.index} if bulk else None,
            ),
            sweep=Sweep(now=start, rand=deps.rand) if bulk else None,
        )
        if config.barrier == "all":
            if config.topology.index == 0:
                loop.coordinator = Coordinator(me)
            else:
                loop.member = Member(now=start, rand=deps.rand)
        loop.contacts = Contacts(
            config=config,
            me=me,
            resolve=resolve,
            post=send,
            released=lambda: isinstance(loop.verdict, Released),
            restarted=lambda i, instance: (
                loop.verdict is None and loop.reach.restarted(i, instance)
            ),
            coordinates=loop.coordinator is not None,
        )
        loop.probes = ProbeQueue(tg, loop.contacts.probe_address, workers=MAX_IN_FLIGHT)
        tg.start_soon(listener.serve, port, loop.contacts.serve)
        t = config.topology
        report(
            Event(
                "start",
                f"pod {t.index} of {t.peers}: peers {t.display(0)} … {t.display(t.peers - 1)}, "
                f"probe {config.probe}, barrier {config.barrier}, listening on port {config.port}",
            )
        )
        # A sidecar stays up anyway, so it need not linger for acks before it reports ready.
        outcome = await _run(loop, receive, linger=after_release is None)
        if after_release is not None:
            tg.start_soon(_keep_dispatching, loop, receive)
            await after_release(outcome)
        tg.cancel_scope.cancel()
    return outcome


async def _run(loop: _Loop, receive: MemoryObjectReceiveStream[Posted], *, linger: bool) -> Outcome:
    config, clock = loop.config, loop.deps.clock
    deadline = loop.start + config.timeout if config.timeout else math.inf
    next_progress = loop.start + PROGRESS_EVERY
    while True:
        now = clock()
        verdict = loop.verdict
        if isinstance(verdict, Aborted):
            # Stay a moment, still answering: a peer that has not met the disagreeing pod yet
            # learns of it from our hello instead of waiting for its own timeout.
            side_done = loop.coordinator.may_leave(now) if loop.coordinator else True
            if side_done and now >= loop.aborted_at + ABORT_LINGER:
                raise BarrierAborted(verdict.reason)
        elif isinstance(verdict, Released):
            if loop.coordinator is None or not linger or loop.coordinator.may_leave(now):
                return loop.outcome(now)
        elif loop.coordinator is None and loop.member is None and loop.reach.done:
            return loop.outcome(now)
        if now >= deadline:
            raise loop.timeout()
        for index in loop.reach.due(now):
            loop.tg.start_soon(loop.contacts.attempt, index)
        if loop.sweep is not None and loop.sweep.query_due(now):
            loop.tg.start_soon(loop.contacts.sweep)
        if loop.member is not None:
            await loop.act(loop.member.poll(now), now)
        if now >= next_progress and verdict is None:
            loop.progress(now)
            next_progress = now + PROGRESS_EVERY
        wakeups = [deadline, next_progress, loop.reach.next_wakeup() or math.inf]
        if loop.sweep is not None:
            wakeups.append(loop.sweep.next_wakeup() or math.inf)
        if loop.member is not None:
            wakeups.append(loop.member.next_wakeup() or math.inf)
        if loop.coordinator is not None:
            wakeups.append(loop.coordinator.leave_at() or math.inf)
        wakeups.append(loop.aborted_at + ABORT_LINGER)
        item: Posted | None = None
        with anyio.move_on_after(max(0.0, min(wakeups) - now)):
            item = await receive.receive()
        # Handled outside the wait's deadline: a wake-up due mid-way must not cancel the sends
        # of a Release or an Arrive half-done (under load it did, and members waited forever).
        if item is not None:
            await loop.handle(item, clock())
        while True:  # drain what else is queued before computing the next step
            try:
                item = receive.receive_nowait()
            except anyio.WouldBlock:
                break
            await loop.handle(item, clock())


async def _keep_dispatching(loop: _Loop, receive: MemoryObjectReceiveStream[Posted]) -> None:
    """Sidecar after release: keep answering late joiners' sessions and probes."""
    async for item in receive:
        if isinstance(item, Attempted):
            continue
        await loop.handle(item, loop.deps.clock())
