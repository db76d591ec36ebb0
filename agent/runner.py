"""The one async loop: wires the pure cores (reach, barrier) to DNS, probes and TCP.

Tasks do only I/O and post what happened into one queue; the loop alone changes state, so the
cores never see two events at once. Side effects (resolver, probe, clock, randomness) are injected
with real defaults.
"""

from __future__ import annotations

import itertools
import math
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import anyio
import anyio.abc
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from agent.barrier import Aborted, Action, Close, Connect, Coordinator, Member, Released, Send
from agent.channel import Channel, HandshakeFailed, client_handshake, server_handshake
from agent.config import Config
from agent.errors import BarrierAborted, BarrierTimeout, ConfigError, WireError
from agent.events import Event, Reporter
from agent.handshake import Verdict, compare
from agent.hints import hints_for
from agent.icmp import open_icmp_socket
from agent.probes import ProbeResult, connect_problem, probe
from agent.reach import Reach
from agent.resolver import Resolution, Resolver
from agent.wire import Hello, Identity, Message, Refuse

__all__ = ["Deps", "Outcome", "PeerInfo", "identity_of", "serve_and_wait"]

PROGRESS_EVERY = 5.0
SEND_TIMEOUT = 2.0


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


def identity_of(config: Config) -> Identity:
    t = config.topology
    return Identity(t.job, config.job_uid, t.index, t.peers, config.port)


# What tasks post to the loop.
@dataclass(frozen=True)
class _Attempted:
    index: int
    result: ProbeResult
    address: str = ""
    addresses: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Nudge:
    index: int


@dataclass(frozen=True)
class _Opened:
    conn: int
    hello: Hello


@dataclass(frozen=True)
class _Received:
    conn: int
    message: Message


@dataclass(frozen=True)
class _Lost:
    conn: int
    reason: str


@dataclass(frozen=True)
class _Note:
    event: Event


_Posted = _Attempted | _Nudge | _Opened | _Received | _Lost | _Note


@dataclass
class _Loop:
    config: Config
    deps: Deps
    report: Reporter
    resolve: Callable[[str], Awaitable[Resolution]]
    me: Identity
    tg: anyio.abc.TaskGroup
    post: MemoryObjectSendStream[_Posted]
    start: float
    reach: Reach
    coordinator: Coordinator | None = None
    member: Member | None = None
    channels: dict[int, Channel] = field(default_factory=dict)
    addresses: dict[int, tuple[str, ...]] = field(default_factory=dict)
    next_conn: itertools.count[int] = field(default_factory=itertools.count)
    reach_reported: bool = False

    @property
    def verdict(self) -> Released | Aborted | None:
        side = self.coordinator or self.member
        return side.verdict if side else None

    def elapsed(self, now: float) -> float:
        return now - self.start

    # --- I/O tasks ---------------------------------------------------------------------------
    async def attempt(self, index: int) -> None:
        """Resolve peer ``index`` afresh and probe each address until one is the right pod."""
        resolution = await self.resolve(self.config.topology.fqdn(index))
        if resolution.problem:
            await self.post.send(_Attempted(index, ProbeResult(resolution.problem)))
            return
        reasons = []
        released = isinstance(self.verdict, Released)
        for address in resolution.addresses:
            result = await probe(
                self.config.probe,
                address,
                me=self.me,
                target=index,
                token=self.config.token,
                released=released,
            )
            if result.ok or result.disagrees:
                await self.post.send(_Attempted(index, result, address, resolution.addresses))
                return
            reasons.append(
                result.reason if len(resolution.addresses) == 1 else f"{address}: {result.reason}"
            )
        await self.post.send(_Attempted(index, ProbeResult("; ".join(reasons))))

    async def serve(self, stream: anyio.abc.SocketStream) -> None:
        """One incoming connection: a probe (answered, then closed) or a member's session."""
        channel = Channel(stream)
        async with stream:
            try:
                hello = await server_handshake(
                    channel,
                    me=self.me,
                    token=self.config.token,
                    released=isinstance(self.verdict, Released),
                )
            except HandshakeFailed as exc:
                await self.post.send(_Note(Event("refused", f"refused a contact: {exc.reason}")))
                return
            except WireError:
                return
            theirs = hello.identity
            same = compare(self.me, theirs, expected_index=None)[0] == Verdict.SAME
            if same and theirs.index < self.me.peers:
                await self.post.send(_Nudge(theirs.index))
            if hello.role != "member":
                return
            if self.coordinator is None:
                await channel.send(Refuse(f"pod {self.me.index} is not the coordinator"))
                return
            await self.session(channel, hello)

    async def session(self, channel: Channel, hello: Hello) -> None:
        """Carry a barrier session's messages into the loop until it closes."""
        conn = next(self.next_conn)
        self.channels[conn] = channel
        channel.keepalive()
        reason = "closed"
        try:
            await self.post.send(_Opened(conn, hello))
            while True:
                message = await channel.receive(None)
                await self.post.send(_Received(conn, message))
        except WireError as exc:
            reason = str(exc)
        finally:
            self.channels.pop(conn, None)
            with anyio.CancelScope(shield=True):
                await channel.aclose()
                await self.post.send(_Lost(conn, reason))

    async def connect_coordinator(self) -> None:
        """Member: open the session to index 0, always re-resolving its name."""
        name = self.config.topology.fqdn(0)
        resolution = await self.resolve(name)
        problems = [resolution.problem] if resolution.problem else []
        for address in resolution.addresses:
            try:
                with anyio.fail_after(3.0):
                    stream = await anyio.connect_tcp(address, self.config.port)
            except TimeoutError:
                problems.append(f"{address}: connect timed out")
                continue
            except OSError as exc:
                problems.append(f"{address}: connect {connect_problem(exc)}")
                continue
            channel = Channel(stream)
            try:
                hello = await client_handshake(
                    channel,
                    me=self.me,
                    role="member",
                    token=self.config.token,
                    expected_index=0,
                    released=self.verdict is not None,
                )
            except (HandshakeFailed, WireError) as exc:
                await channel.aclose()
                problems.append(f"{address}: {exc}")
                continue
            await self.session(channel, hello)
            return
        await self.post.send(_Lost(-1, "; ".join(problems) or "no address"))

    # --- the loop's own steps ----------------------------------------------------------------
    async def act(self, actions: list[Action], now: float) -> None:
        for action in actions:
            if isinstance(action, Send):
                channel = self.channels.get(action.conn)
                if channel is not None:
                    try:
                        with anyio.fail_after(SEND_TIMEOUT):
                            await channel.send(action.message)
                    except (
                        OSError,
                        TimeoutError,
                        anyio.BrokenResourceError,
                        anyio.ClosedResourceError,
                    ):
                        pass  # the session's reader reports the loss
            elif isinstance(action, Close):
                if (channel := self.channels.get(action.conn)) is not None:
                    await channel.aclose()
            elif isinstance(action, Connect):
                self.tg.start_soon(self.connect_coordinator)
            elif isinstance(action, Released):
                self.report(
                    Event(
                        "released",
                        f"barrier released: {action.how}",
                        {"elapsed": round(self.elapsed(now), 3)},
                    )
                )
            elif isinstance(action, Aborted):
                self.report(Event("aborted", f"barrier aborted: {action.reason}"))

    async def handle(self, item: _Posted, now: float) -> None:
        if isinstance(item, _Note):
            self.report(item.event)
        elif isinstance(item, _Nudge):
            self.reach.nudge(item.index, now)
        elif isinstance(item, _Attempted):
            await self.attempted(item, now)
        elif isinstance(item, _Opened):
            if self.coordinator is not None:
                await self.act(self.coordinator.joined(item.conn, item.hello, now), now)
            elif self.member is not None:
                await self.act(self.member.opened(item.conn, now), now)
        elif isinstance(item, _Received):
            side = self.coordinator
            actions = (
                side.received(item.conn, item.message, now)
                if side is not None
                else self.member.received(item.message, now)
                if self.member
                else []
            )
            await self.act(actions, now)
        elif isinstance(item, _Lost):
            if self.coordinator is not None:
                await self.act(self.coordinator.closed(item.conn, now), now)
            elif self.member is not None and (item.conn == -1 or item.conn == self.member.conn):
                await self.act(self.member.connect_failed(item.reason, now), now)

    async def attempted(self, item: _Attempted, now: float) -> None:
        index, result = item.index, item.result
        if result.disagrees:
            reason = result.reason
            side = self.coordinator or self.member
            if side is None:
                raise BarrierAborted(reason)
            await self.act(side.abort(reason, now), now)
            return
        if not result.ok:
            self.reach.failed(index, result.reason, now)
            return
        self.reach.succeeded(index, item.address, now)
        self.addresses[index] = item.addresses
        self.report(
            Event(
                "reached",
                f"reached {self.config.topology.display(index)} at {item.address} "
                f"({self.config.probe}) after {self.elapsed(now):.3f}s",
                {
                    "peer": index,
                    "address": item.address,
                    "probe": str(self.config.probe),
                    "elapsed": round(self.elapsed(now), 3),
                },
            )
        )
        if result.released:
            side = self.coordinator or self.member
            if side is not None:
                await self.act(side.peer_released(now), now)
        if self.reach.done and not self.reach_reported:
            self.reach_reported = True
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
        out = [(p.index, p.reason) for p in self.reach.missing()]
        if not out and self.coordinator is not None:
            out = [(i, f"barrier: {why}") for i, why in self.coordinator.waiting_for()]
        elif not out and self.member is not None:
            out = [(0, f"barrier: {self.member.last_problem}")]
        return out

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
        reasons = [p.reason if not p.reached else "" for p in self.reach.peers]
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


async def _listen(config: Config) -> anyio.abc.Listener[anyio.abc.SocketStream]:
    try:
        return await anyio.create_tcp_listener(
            local_host=config.listen, local_port=config.port, reuse_port=False, backlog=4096
        )
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
    resolve = deps.resolve
    if resolve is None:
        servers = config.dns_servers or tuple((s, 53) for s in config.resolv.nameservers)
        try:
            resolve = Resolver(servers).addresses
        except ValueError as exc:
            raise ConfigError([f"--dns-server / PEER_AGENT_DNS_SERVER: {exc}"]) from None
    listener = await _listen(config)
    send: MemoryObjectSendStream[_Posted]
    receive: MemoryObjectReceiveStream[_Posted]
    send, receive = anyio.create_memory_object_stream[_Posted](math.inf)
    start = deps.clock()
    async with listener, send, receive, anyio.create_task_group() as tg:
        loop = _Loop(
            config=config,
            deps=deps,
            report=report,
            resolve=resolve,
            me=identity_of(config),
            tg=tg,
            post=send,
            start=start,
            reach=Reach(config.topology.peers, now=start, rand=deps.rand),
        )
        if config.barrier == "all":
            if config.topology.index == 0:
                loop.coordinator = Coordinator(loop.me)
            else:
                loop.member = Member(now=start, rand=deps.rand)
        tg.start_soon(listener.serve, loop.serve)
        outcome = await _run(loop, receive)
        if after_release is not None:
            tg.start_soon(_keep_dispatching, loop, receive)
            await after_release(outcome)
        tg.cancel_scope.cancel()
    return outcome


async def _run(loop: _Loop, receive: MemoryObjectReceiveStream[_Posted]) -> Outcome:
    config, clock = loop.config, loop.deps.clock
    deadline = loop.start + config.timeout if config.timeout else math.inf
    next_progress = loop.start + PROGRESS_EVERY
    while True:
        now = clock()
        verdict = loop.verdict
        if isinstance(verdict, Aborted):
            if loop.coordinator is None or loop.coordinator.may_leave(now):
                raise BarrierAborted(verdict.reason)
        elif isinstance(verdict, Released):
            if loop.coordinator is None or loop.coordinator.may_leave(now):
                return loop.outcome(now)
        elif loop.coordinator is None and loop.member is None and loop.reach.done:
            return loop.outcome(now)
        if now >= deadline:
            raise loop.timeout()
        for index in loop.reach.due(now):
            loop.tg.start_soon(loop.attempt, index)
        if loop.member is not None:
            await loop.act(loop.member.poll(now), now)
        if now >= next_progress and verdict is None:
            loop.progress(now)
            next_progress = now + PROGRESS_EVERY
        wakeups = [deadline, next_progress, loop.reach.next_wakeup() or math.inf]
        if loop.member is not None:
            wakeups.append(loop.member.next_wakeup() or math.inf)
        if loop.coordinator is not None:
            wakeups.append(loop.coordinator.leave_at() or math.inf)
        with anyio.move_on_after(max(0.0, min(wakeups) - now)):
            item = await receive.receive()
            await loop.handle(item, clock())
        while True:  # drain what else is queued before computing the next step
            try:
                item = receive.receive_nowait()
            except anyio.WouldBlock:
                break
            await loop.handle(item, clock())


async def _keep_dispatching(loop: _Loop, receive: MemoryObjectReceiveStream[_Posted]) -> None:
    """Sidecar after release: keep answering late joiners' sessions and probes."""
    async for item in receive:
        if isinstance(item, _Attempted):
            continue
        await loop.handle(item, loop.deps.clock())
