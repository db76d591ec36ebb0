"""The selectors driver's one loop: performs the pure core's effects and feeds it what happened.

As ``agent.io.runner`` and ``agent.io.executor`` do for the anyio driver, with the same core,
the same effects, the same inputs: each effect starts a task (an attempt, a DNS round, a dial,
a contact's answer), queues a probe, sends or closes, or writes a line; what the tasks post is
handed to the core in order, and the select timeout is the core's next wake-up. It decides
nothing. ``stopped`` is asked at every turn (a stop signal, which ``waker`` wakes it for).
"""

from __future__ import annotations

import collections
import functools
import socket
import time
from collections.abc import Callable, Coroutine
from typing import Any

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
from agent.core.instead import Tasked, instead, probe_given_up
from agent.core.log import Reporter
from agent.core.outcome import Outcome
from agent.core.status import released_line
from agent.core.timing import DEFAULT_TIMING, Timing
from agent.io.accepting import Accepting
from agent.io.dnswire import servers_of
from agent.io.handshaking import Handshaking
from agent.io.instance import identity_of, listen_on_port, uniform
from agent.io.limits import MAX_IN_FLIGHT, PUSH_RESERVE, ensure_fd_limit
from agent.io.probequeue import ProbeQueue
from agent.io.supervisor import Supervisor
from agent.io.sync.conn import Conn
from agent.io.sync.loop import Loop, checkpoint, readable, sleep_until
from agent.io.sync.peers import Peers
from agent.io.sync.resolver import Resolver
from agent.protocol.wire import Message

__all__ = ["serve_and_wait"]


class _Starter:
    """The probe queue's workers, as loop tasks (``ProbeQueue`` is the anyio driver's too)."""

    def __init__(self, loop: Loop, supervisor: Supervisor) -> None:
        self.loop, self.supervisor = loop, supervisor

    def start_soon(self, func: Callable[[bool], Coroutine[Any, Any, None]], arg: bool, /) -> Any:
        # the queue's worker reports a probe's bug itself; this is for a bug of its own
        self.loop.spawn(func(arg), functools.partial(self.supervisor.bug, "probe", ""))


class Executor:
    """Carries out the core's effects (``agent.core.effects.EffectHandler``); ``perform``
    returns the outcome on ``Finish``. Consecutive sends go out together."""

    def __init__(
        self,
        core: Agent,
        loop: Loop,
        peers: Peers,
        probes: ProbeQueue,
        report: Reporter,
        supervisor: Supervisor,
    ) -> None:
        self.core, self.loop, self.peers, self.probes = core, loop, peers, probes
        self.report_line, self.supervisor = report, supervisor
        self._sends: list[tuple[int, Message]] = []
        self._outcome: Outcome | None = None

    def perform(self, effects: list[Effect]) -> Outcome | None:
        self._outcome = None
        for effect in effects:
            if not isinstance(effect, Send):
                self._flush()
            dispatch(self, effect)
        self._flush()
        return self._outcome

    def _flush(self) -> None:
        if self._sends:
            sends, self._sends = self._sends, []
            self.peers.send(sends)

    def _start(self, task: Coroutine[Any, Any, None], effect: Tasked) -> None:
        """``effect``'s task, supervised: a bug is reported, and the core gets what
        ``agent.core.instead`` says instead."""
        kind, name, failed = instead(effect, self.core.config.topology)

        def bug(exc: Exception) -> None:
            self.supervisor.bug(kind, name, exc)
            self.peers.post(failed)

        self.loop.spawn(task, bug)

    def attempt(self, effect: Attempt) -> None:
        task = self.peers.attempt(effect.index, effect.instance, effect.addresses, effect.hello)
        self._start(task, effect)

    def sweep(self, effect: Sweep) -> None:
        self._start(self.peers.sweep(), effect)

    def probe_address(self, effect: ProbeAddress) -> None:
        self.probes.add(effect.address, pushed=effect.pushed)

    def lookup(self, effect: Lookup) -> None:
        self._start(self.peers.lookup(effect.index), effect)

    def dial(self, effect: Dial) -> None:
        self._start(self.peers.dial_coordinator(effect.addresses, effect.index), effect)

    def send(self, effect: Send) -> None:
        self._sends.append((effect.conn, effect.message))

    def close(self, effect: Close) -> None:
        self.peers.close(effect.conn)

    def report(self, effect: Report) -> None:
        self.report_line(effect.line)

    def released(self, effect: Released) -> None:
        elapsed = self.loop.clock() - self.core.start
        self.report_line(released_line(effect, elapsed, self.peers.counts))

    def aborted(self, effect: Aborted) -> None:
        pass  # the core reports the abort itself (a Report follows)

    def finish(self, effect: Finish) -> None:
        self._outcome = effect.outcome

    def fail(self, effect: Fail) -> None:
        raise effect.error


async def _accept(sock: socket.socket, peers: Peers, supervisor: Supervisor) -> None:
    """As ``agent.io.listener.serve``: every connection answered by a task of its own, every
    error of ``accept()`` survived (``agent.io.accepting``). Waits as long as the run: the
    loop's end closes it."""
    loop, accepting = peers.loop, Accepting(supervisor.failure)
    while True:
        taken = accepting.take(sock)
        if taken is None:
            await readable(sock, None)
            continue
        if isinstance(taken, float):
            if taken:
                await sleep_until(loop.clock() + taken)
            continue
        conn, peer = taken
        stream = Conn(loop, conn, peer)
        loop.spawn(peers.serve(stream), functools.partial(_contact_bug, supervisor, stream))
        # As the anyio listener: the contact counts itself before the next is accepted, and a
        # flood of connections leaves the loop its turns.
        await checkpoint()


def _contact_bug(supervisor: Supervisor, conn: Conn, exc: Exception) -> None:
    supervisor.bug("contact", conn.peer, exc)
    conn.close()


def _resolver(loop: Loop, config: Config, timing: Timing) -> Resolver:
    wait = timing.dns_answer_wait
    return Resolver(loop, servers_of(config), attempt_timeout=timing.dns_timeout, answer_wait=wait)


def serve_and_wait(
    config: Config,
    *,
    report: Reporter,
    supervisor: Supervisor,
    stopped: Callable[[], bool] = lambda: False,
    waker: socket.socket | None = None,
    clock: Callable[[], float] = time.monotonic,
    timing: Timing = DEFAULT_TIMING,
) -> Outcome | None:
    """Listen, reach every peer, pass the barrier (None: ``stopped`` said so first).
    Raises BarrierTimeout (exit 3) or BarrierAborted (exit 4), as the anyio driver does."""
    ensure_fd_limit(config.topology.peers)
    loop = Loop(clock)
    if waker is not None:
        loop.waker(waker)
    queue: collections.deque[Input] = collections.deque()
    me = identity_of(config)
    core = Agent(
        config, me=me, now=clock(), rand=uniform, timing=timing, max_in_flight=MAX_IN_FLIGHT
    )
    resolve = _resolver(loop, config, timing).addresses

    def released() -> bool:
        return core.released

    handshaking = Handshaking(port=config.port, report=report)
    peers = Peers(loop, config, me, resolve, queue.append, released, timing, handshaking)
    probes = ProbeQueue(
        _Starter(loop, supervisor),
        peers.probe_address,
        workers=MAX_IN_FLIGHT,
        push_reserve=PUSH_RESERVE,
        supervisor=supervisor,
        gave_up=lambda address: queue.append(probe_given_up(address)),
    )
    executor = Executor(core, loop, peers, probes, report, supervisor)
    with listen_on_port(config) as port:
        loop.spawn(
            _accept(port, peers, supervisor), functools.partial(supervisor.bug, "accept", "")
        )
        try:
            return _run(executor, queue, stopped)
        finally:
            loop.close()


def _run(
    executor: Executor, queue: collections.deque[Input], stopped: Callable[[], bool]
) -> Outcome | None:
    core, loop = executor.core, executor.loop
    clock = loop.clock
    outcome = executor.perform(core.begin(clock()))
    while outcome is None:
        if stopped():
            return None
        if not queue:
            loop.poll(core.next_wakeup())
        loop.run_ready()
        handled = bool(queue)
        while queue and outcome is None:
            outcome = executor.perform(core.handle(queue.popleft(), clock()))
        if outcome is None and (handled or clock() >= core.next_wakeup()):
            outcome = executor.perform(core.poll(clock()))
    return outcome
