"""The one async loop: performs the pure core's effects and feeds it what happened.

I/O tasks (``contacts``, ``sessions``, the probe queue) post events into one queue; the loop
hands each to :class:`agent.core.agent.Agent` and carries out the effects it returns, in order
(``agent.io.executor``). It decides nothing about the barrier. Side effects (resolver, clock,
randomness) and the pace (``Timing``) are injected with real defaults.
"""

from __future__ import annotations

import collections
import functools
import math
import socket
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING

import anyio
import anyio.abc
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from agent.config.model import Config, ProbeKind
from agent.core.agent import Agent
from agent.core.inputs import Input, Resolution
from agent.core.instead import probe_given_up
from agent.core.log import Reporter
from agent.core.outcome import Outcome
from agent.core.seeded import Proof, Proven, proven_by
from agent.core.timing import DEFAULT_TIMING, Timing
from agent.io import listener
from agent.io.contacts import Contacts
from agent.io.dnswire import servers_of
from agent.io.executor import Executor
from agent.io.handshaking import Handshaking
from agent.io.heard import Heard
from agent.io.instance import INSTANCE, identity_of, listen_on_port, uniform
from agent.io.limits import MAX_IN_FLIGHT, PUSH_RESERVE, ensure_fd_limit
from agent.io.probequeue import ProbeQueue
from agent.io.resolver import Resolver
from agent.io.sessions import Sessions
from agent.io.supervisor import Supervisor
from agent.protocol.wire import Identity
from agent.values import value

if TYPE_CHECKING:  # the shared port's commands bring it (sidecar, exit and named barriers)
    from agent.io.mux import Mux

__all__ = [
    "INSTANCE",
    "REAL_DEPS",
    "Deps",
    "identity_of",
    "resolver_for",
    "serve_and_wait",
    "uniform",
]


@value
class Deps:
    """Side effects, injected so tests can replace any of them, and the pace."""

    resolve: Callable[[str], Awaitable[Resolution]] | None = None  # default: Resolver(config)
    clock: Callable[[], float] = time.monotonic
    rand: Callable[[], float] = uniform
    timing: Timing = DEFAULT_TIMING


#: the real clock, randomness and resolver
REAL_DEPS = Deps()


def _check_probe(config: Config) -> None:
    if config.probe.kind is ProbeKind.ICMP:
        from agent.io.icmp import open_icmp_socket  # only the icmp probe pays for it

        sock, _ = open_icmp_socket()
        sock.close()


def resolver_for(
    config: Config, timing: Timing = DEFAULT_TIMING
) -> Callable[[str], Awaitable[Resolution]]:
    """The DNS lookup every command uses; ConfigError (exit 2) when there is no server."""
    wait = timing.dns_answer_wait
    return Resolver(
        servers_of(config), attempt_timeout=timing.dns_timeout, answer_wait=wait
    ).addresses


async def serve_and_wait(
    config: Config,
    *,
    report: Reporter,
    deps: Deps = REAL_DEPS,
    after_release: Callable[[Outcome], Awaitable[None]] | None = None,
    supervisor: Supervisor | None = None,
    mux: Mux | None = None,
    me: Identity | None = None,
    heard: Heard | None = None,
    seed: Mapping[int, Proven] | None = None,
    proven: Callable[[Proof], None] | None = None,
) -> Outcome:
    """Listen, reach every peer, pass the barrier; then ``after_release`` (sidecar), still serving.
    ``supervisor`` (default: one reporting to ``report``) catches bugs in the I/O tasks. With
    ``mux``, the port is shared: this instance gets the connections whose hello names ``me``
    (default: ``identity_of(config)``), another instance of the barrier the others. ``heard``
    (the exit barrier): keeps the hellos that passed their handshake, and is told the peers
    reached at the release, before the release is reported. ``seed``: where an earlier barrier
    of this process reached its peers, tried first (``agent.core.seeded``); ``proven``: given,
    once this one is released and before ``after_release``, where it reached them: read when
    the next barrier begins, so a pod replaced meanwhile is not seeded.

    Raises BarrierTimeout (exit 3) or BarrierAborted (exit 4).
    """
    _check_probe(config)
    ensure_fd_limit(config.topology.peers)
    resolve = deps.resolve or resolver_for(config, deps.timing)
    supervisor = supervisor or Supervisor(report)
    me = me or identity_of(config)
    if mux is not None:
        return await _serve(
            config, me, mux, resolve, report, deps, after_release, supervisor, heard, seed, proven
        )
    with listen_on_port(config) as port:
        return await _serve(
            config, me, port, resolve, report, deps, after_release, supervisor, heard, seed, proven
        )


async def _serve(
    config: Config,
    me: Identity,
    port: socket.socket | Mux,
    resolve: Callable[[str], Awaitable[Resolution]],
    report: Reporter,
    deps: Deps,
    after_release: Callable[[Outcome], Awaitable[None]] | None,
    supervisor: Supervisor,
    heard: Heard | None,
    seed: Mapping[int, Proven] | None = None,
    proven: Callable[[Proof], None] | None = None,
) -> Outcome:
    send: MemoryObjectSendStream[Input]
    receive: MemoryObjectReceiveStream[Input]
    send, receive = anyio.create_memory_object_stream[Input](math.inf)
    # A sidecar stays up anyway, so it need not linger for acks before it reports ready.
    core = Agent(
        config,
        me=me,
        now=deps.clock(),
        rand=deps.rand,
        timing=deps.timing,
        stays_for_acks=after_release is None,
        max_in_flight=MAX_IN_FLIGHT,
        held=None if isinstance(port, socket.socket) else port.held,
        seed=seed,
    )

    counts: collections.Counter[str] = collections.Counter()
    async with send, receive, anyio.create_task_group() as tg:

        def released() -> bool:
            return core.released

        sessions = Sessions(config, me, resolve, send, released, counts, deps.timing)
        handshaking = Handshaking(port=config.port, report=report)
        contacts = Contacts(
            config,
            me,
            resolve,
            send,
            sessions,
            released,
            counts,
            deps.timing,
            handshaking,
            heard,
        )
        probes = ProbeQueue(
            tg,
            contacts.probe_address,
            workers=MAX_IN_FLIGHT,
            push_reserve=PUSH_RESERVE,
            supervisor=supervisor,
            gave_up=lambda address: send.send_nowait(probe_given_up(address)),
        )
        executor = Executor(core, tg, contacts, probes, report, deps.clock, supervisor)
        if isinstance(port, socket.socket):
            tg.start_soon(
                functools.partial(listener.serve, supervisor=supervisor), port, contacts.serve
            )
        else:
            port.register(me, contacts.serve)
        try:
            outcome = await _run(executor, receive)
            if proven is not None and core.released:
                proven(functools.partial(_proof, core))
            if after_release is not None:
                tg.start_soon(_keep_serving, executor, receive)
                await after_release(outcome)
        finally:
            if not isinstance(port, socket.socket):
                port.unregister(me)
                core.end()
        tg.cancel_scope.cancel()
    return outcome


def _proof(core: Agent) -> Mapping[int, Proven]:
    """What ``core``, released, has proved, as it is now (``agent.core.seeded.Proof``)."""
    callers = None if core.callers is None else core.callers.seeds  # pod I's
    return proven_by(core.reach, callers)


async def _run(executor: Executor, receive: MemoryObjectReceiveStream[Input]) -> Outcome:
    core, clock = executor.core, executor.clock
    outcome = await executor.perform(core.begin(clock()))
    while outcome is None:
        item = await _next_event(receive, core.next_wakeup() - clock())
        # Performed outside the wait's deadline: a wake-up due mid-way must not cancel the sends
        # of a Release or an Arrive half-done (under load it did, and members waited forever).
        while item is not None and outcome is None:
            outcome = await executor.perform(core.handle(item, clock()))
            try:  # drain what else is queued before the next poll
                item = receive.receive_nowait()
            except anyio.WouldBlock:
                item = None
        if outcome is None:
            outcome = await executor.perform(core.poll(clock()))
    return outcome


async def _next_event(receive: MemoryObjectReceiveStream[Input], within: float) -> Input | None:
    """The next event, or None once ``within`` seconds have passed. One already queued is
    taken without the deadline's cancel scope (a wake-up costs more with it than without)."""
    try:
        return receive.receive_nowait()
    except anyio.WouldBlock:
        pass
    with anyio.move_on_after(max(0.0, within)):
        return await receive.receive()
    return None


async def _keep_serving(executor: Executor, receive: MemoryObjectReceiveStream[Input]) -> None:
    """Sidecar after release: keep answering late joiners' sessions and probes (and the few
    DNS rounds that vouch for a late joiner's address)."""
    core, clock = executor.core, executor.clock
    while True:
        item: Input | None = None
        with anyio.move_on_after(max(0.0, core.next_wakeup() - clock())):
            item = await receive.receive()
        if item is not None:
            await executor.perform(core.handle(item, clock()))
        await executor.perform(core.poll(clock()))
