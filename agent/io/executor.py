"""How the runner performs the pure core's effects: an ``EffectHandler`` over the I/O tasks.

Each effect starts a supervised I/O task (an attempt, a DNS round, a dial), queues a probe,
sends or closes, or writes a line; ``Finish`` hands back the outcome and ``Fail`` raises. It
decides nothing: what each effect means is the core's (``agent.core.effects.dispatch`` is the
one place that tells them apart, for the runner and the in-memory cluster alike).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

import anyio.abc

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
from agent.core.instead import Tasked, instead
from agent.core.log import Reporter
from agent.core.outcome import Outcome
from agent.core.status import released_line
from agent.io.contacts import Contacts
from agent.io.heard import PeerReached
from agent.io.probequeue import ProbeQueue
from agent.io.supervisor import Supervisor
from agent.protocol.wire import Message

__all__ = ["Executor"]


class Executor:
    """Carries out the core's effects with the I/O tasks; ``perform`` returns the outcome on
    ``Finish``. Consecutive sends go out together, before whatever effect comes after them."""

    def __init__(
        self,
        core: Agent,
        tg: anyio.abc.TaskGroup,
        contacts: Contacts,
        probes: ProbeQueue,
        report: Reporter,
        clock: Callable[[], float],
        supervisor: Supervisor,
    ) -> None:
        self.core, self.tg, self.contacts, self.probes = core, tg, contacts, probes
        self.sessions = contacts.sessions
        self.report_line, self.clock, self.supervisor = report, clock, supervisor
        self._sends: list[tuple[int, Message]] = []
        self._outcome: Outcome | None = None

    async def perform(self, effects: list[Effect]) -> Outcome | None:
        self._outcome = None
        for effect in effects:
            if not isinstance(effect, Send):
                await self._flush()
            await dispatch(self, effect)
        await self._flush()
        return self._outcome

    async def _flush(self) -> None:
        if self._sends:
            sends, self._sends = self._sends, []
            await self.sessions.send(sends)

    def _start(self, task: Callable[[], Awaitable[None]], effect: Tasked) -> None:
        """Run ``effect``'s I/O task supervised: a bug in it is reported and counted, and the
        core gets what ``agent.core.instead`` says instead of the event it waits for."""
        kind, name, failed = instead(effect, self.core.config.topology)

        async def supervised() -> None:
            try:
                await task()
            except Exception as exc:
                self.supervisor.bug(kind, name, exc)
                self.contacts.post.send_nowait(failed)

        self.tg.start_soon(supervised)

    # --- one method per effect (agent.core.effects.EffectHandler) --------------------------------
    async def attempt(self, effect: Attempt) -> None:
        attempt = functools.partial(
            self.contacts.attempt, effect.index, effect.instance, effect.addresses, effect.hello
        )
        self._start(attempt, effect)

    async def sweep(self, effect: Sweep) -> None:
        self._start(self.contacts.sweep, effect)

    async def probe_address(self, effect: ProbeAddress) -> None:
        self.probes.add(effect.address, pushed=effect.pushed)

    async def lookup(self, effect: Lookup) -> None:
        lookup = functools.partial(self.contacts.lookup, effect.index)
        self._start(lookup, effect)

    async def dial(self, effect: Dial) -> None:
        dial = functools.partial(self.sessions.dial_coordinator, effect.addresses, effect.index)
        self._start(dial, effect)

    async def send(self, effect: Send) -> None:
        self._sends.append((effect.conn, effect.message))

    async def close(self, effect: Close) -> None:
        await self.sessions.close(effect.conn)

    async def report(self, effect: Report) -> None:
        self.report_line(effect.line)

    async def released(self, effect: Released) -> None:
        elapsed = self.clock() - self.core.start
        self._book_reached()
        self.report_line(released_line(effect, elapsed, self.contacts.counts))

    def _book_reached(self) -> None:
        """For the exit barrier's failure report: the peers reached, each at the address and
        instance it was reached at (all of them at a release; those so far at a timeout)."""
        if (heard := self.contacts.heard) is not None:
            peers = [p for p in self.core.reach.peers if p.reached]
            heard.released(tuple(PeerReached(p.index, p.address, p.instance) for p in peers))

    async def aborted(self, effect: Aborted) -> None:
        pass  # the core reports the abort itself (a Report follows)

    async def finish(self, effect: Finish) -> None:
        self._outcome = effect.outcome

    async def fail(self, effect: Fail) -> None:
        self._book_reached()  # what it knows of failed workloads is said at a timeout too
        raise effect.error
