"""The one async loop: wires the pure cores (reach, barrier) to DNS, probes and TCP.

Tasks (``contacts``) do only I/O and post what happened into one queue; the loop alone changes
state (``loop.Loop`` handles each event), so the cores never see two events at once. Side
effects (resolver, clock, randomness) are injected with real defaults.
"""

from __future__ import annotations

import functools
import math
import os
import random
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

import agent.loop
from agent import listener
from agent.barrier import Aborted, Coordinator, Member, Released
from agent.config import Config
from agent.contacts import AddressProbed, Attempted, Contacts, Posted
from agent.errors import BarrierAborted, ConfigError
from agent.events import Event, Reporter
from agent.icmp import open_icmp_socket
from agent.limits import MAX_IN_FLIGHT, PUSH_RESERVE, ensure_fd_limit
from agent.loop import Loop
from agent.probequeue import ProbeQueue
from agent.probes import ProbeResult
from agent.reach import Reach
from agent.resolver import Resolution, Resolver
from agent.status import Outcome
from agent.supervisor import Supervisor
from agent.sweep import Sweep
from agent.wire import Identity

__all__ = ["ABORT_LINGER", "Deps", "identity_of", "serve_and_wait"]

ABORT_LINGER = 3.0


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
    supervisor: Supervisor | None = None,
) -> Outcome:
    """Listen, reach every peer, pass the barrier; then ``after_release`` (sidecar), still serving.
    ``supervisor`` (default: one reporting to ``report``) catches bugs in connection handlers.

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
    supervisor = supervisor or Supervisor(report)
    with _listen(config) as port:
        return await _serve(config, port, resolve, report, deps, after_release, supervisor)


async def _serve(
    config: Config,
    port: socket.socket,
    resolve: Callable[[str], Awaitable[Resolution]],
    report: Reporter,
    deps: Deps,
    after_release: Callable[[Outcome], Awaitable[None]] | None,
    supervisor: Supervisor,
) -> Outcome:
    send: MemoryObjectSendStream[Posted]
    receive: MemoryObjectReceiveStream[Posted]
    send, receive = anyio.create_memory_object_stream[Posted](math.inf)
    start = deps.clock()
    async with send, receive, anyio.create_task_group() as tg:
        me = identity_of(config)
        # Bulk discovery needs the hello to say who answers; other probes resolve each name.
        bulk = config.probe.kind == "tcp" and config.probe.port is None
        loop = Loop(
            config=config,
            clock=deps.clock,
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
        loop.probes = ProbeQueue(
            tg,
            loop.contacts.probe_address,
            workers=MAX_IN_FLIGHT,
            push_reserve=PUSH_RESERVE,
            supervisor=supervisor,
            # the address gets a result, or the sweep would wait for it forever
            gave_up=lambda address: send.send_nowait(
                AddressProbed(address, ProbeResult("probe failed with a bug (reported)"))
            ),
        )
        tg.start_soon(
            functools.partial(listener.serve, supervisor=supervisor), port, loop.contacts.serve
        )
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


async def _run(loop: Loop, receive: MemoryObjectReceiveStream[Posted], *, linger: bool) -> Outcome:
    config, clock = loop.config, loop.clock
    deadline = loop.start + config.timeout if config.timeout else math.inf
    next_progress = loop.start + agent.loop.PROGRESS_EVERY
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
            raise loop.status.timeout()
        for index in loop.reach.due(now):
            loop.tg.start_soon(loop.contacts.attempt, index)
        if loop.sweep is not None and loop.sweep.query_due(now):
            loop.tg.start_soon(loop.contacts.sweep)
        if loop.member is not None:
            await loop.act(loop.member.poll(now), now)
        if now >= next_progress and verdict is None:
            loop.report(loop.status.progress(loop.elapsed(now)))
            next_progress = now + agent.loop.PROGRESS_EVERY
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


async def _keep_dispatching(loop: Loop, receive: MemoryObjectReceiveStream[Posted]) -> None:
    """Sidecar after release: keep answering late joiners' sessions and probes."""
    async for item in receive:
        if isinstance(item, Attempted):
            continue
        await loop.handle(item, loop.clock())
