"""The effects of the explorer's cores in its world (tests/sim/world.py): an ``EffectHandler``
that sends and closes at once and leaves what waits on the network (attempts, rounds, probes,
dials) in ``world.pending`` until the search fires it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from agent.core.effects import (
    Aborted,
    Attempt,
    Close,
    Dial,
    Fail,
    Finish,
    Lookup,
    ProbeAddress,
    Released,
    Report,
    Send,
    Sweep,
)
from agent.core.inputs import Contacted, Lost
from agent.protocol.wire import START_BARRIER

if TYPE_CHECKING:
    from tests.sim.truth import Truth
    from tests.sim.world import Inst, World

__all__ = ["LOST", "Effects", "Pending"]

LOST = "lost"  # a connection's end: what follows it in a queue is never delivered
# What waits for the world to answer it: an effect that goes out, or a contact heard.
Pending = Attempt | Sweep | ProbeAddress | Lookup | Dial | Contacted


@dataclass
class Effects:
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
            self.world.dial(self.inst, effect.addresses, effect.index)

    @property
    def truth(self) -> Truth:
        return self.world.truth_of(self.inst.barrier)

    def send(self, effect: Send) -> None:
        self.truth.sent(self.inst.me.instance, effect.message, self.world.now)
        if (link := self.world.links.get((self.inst.key, effect.conn))) is not None:
            self.world.queues.setdefault(link, []).append(effect.message)

    def close(self, effect: Close) -> None:
        world = self.world
        if (link := world.links.pop((self.inst.key, effect.conn), None)) is not None:
            self.truth.closed((self.inst.key, effect.conn), world.now)
            world.queues.setdefault(link, []).append(LOST)
            world.feed(self.inst, Lost(effect.conn, "closed"))

    def report(self, effect: Report) -> None:
        pass

    def released(self, effect: Released) -> None:
        if self.inst.released_at is None:
            self.inst.released_at = self.world.now
        self.truth.verdict(self.inst.me.instance, effect, self.world.now)

    def aborted(self, effect: Aborted) -> None:
        self.truth.verdict(self.inst.me.instance, effect, self.world.now)

    def finish(self, effect: Finish) -> None:
        self.truth.ended_wait(self.inst.me.instance, self.world.now)
        mode, started = self.world.mode, self.inst.barrier == START_BARRIER
        if (started and mode in ("sidecar", "exit")) or mode == "named":
            return  # a sidecar serves on (each named barrier too); so does a start barrier
            # while the workload runs
        self._exit()
        if mode in ("wait", "exit"):  # its pod completes and leaves DNS
            self.world.listed.discard(self.inst.address)
            self.world.lagging.discard(self.inst.address)

    def fail(self, effect: Fail) -> None:
        self.truth.ended_wait(self.inst.me.instance, self.world.now)
        self._exit()

    def _exit(self) -> None:
        self.world.kill(self.inst)  # the process exits
