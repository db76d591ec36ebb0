"""What the one loop does with each event: the agent's state, fed to the pure cores, and their
actions carried out through the I/O tasks (``contacts``) and the log.

The loop itself (waiting, wake-ups, deadlines) is ``runner``; this is what it calls per event.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import anyio.abc

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
from agent.errors import BarrierAborted
from agent.events import Event, Reporter
from agent.probequeue import ProbeQueue
from agent.probes import ProbeResult
from agent.reach import Reach
from agent.resolver import Resolution
from agent.status import Outcome, Status
from agent.sweep import Sweep
from agent.wire import Identity, Message

__all__ = ["PROGRESS_EVERY", "Loop"]

PROGRESS_EVERY = 5.0


@dataclass
class Loop:
    config: Config
    clock: Callable[[], float]
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

    @property
    def status(self) -> Status:
        return Status(self.config, self.reach, self.sweep, self.coordinator or self.member)

    def outcome(self, now: float) -> Outcome:
        return self.status.outcome(self.elapsed(now), self.addresses)
