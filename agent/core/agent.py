"""The agent as one pure state machine: events and ``now`` in, effects out (as h11's Connection).

:class:`Agent` owns everything the agent decides: which peers to resolve and probe and when
(``Reach`` and a ``Discovery``), what a hello from a restarted peer means, when this pod has
reached everyone, its side of the barrier (``Coordinator`` or ``Member``), what it reports, and
when the wait ends and how (its ``Phase``). What other pods send it passes ``Incoming`` (and
its ``Admission``) first. The runner only performs the effects and feeds back what happened;
the in-memory cluster of the tests drives this same class.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import assert_never

from agent.config.model import Config
from agent.core.answers import counted_by_name, peer_at_address
from agent.core.asking import Asking
from agent.core.barrier import Barrier
from agent.core.callers import led
from agent.core.causes import Cause, Failure
from agent.core.discovery import discovery_for
from agent.core.dnspace import DnsPace
from agent.core.effects import Aborted, Attempt, Effect, Fail, Finish, Lookup, Released, Report
from agent.core.heldshare import HeldShare
from agent.core.incoming import contacts
from agent.core.inputs import (
    AddressProbed,
    Attempted,
    Contacted,
    ContactRefused,
    DialFailed,
    Disagreeing,
    Input,
    LookedUp,
    Lost,
    Opened,
    Reached,
    Received,
    Swept,
    Unreached,
)
from agent.core.outcome import Outcome
from agent.core.ownname import OwnName
from agent.core.phase import Phase, phase_of
from agent.core.refused import RefusedAnswers, timed_out
from agent.core.roles import Coordinator, Member
from agent.core.seeded import Proven
from agent.core.status import Status
from agent.core.targets import arrival
from agent.core.timing import DEFAULT_TIMING, Timing
from agent.core.vouching import Vouching
from agent.errors import BarrierAborted
from agent.protocol.wire import Identity

__all__ = ["Agent"]


class Agent:
    """One agent process's decisions. ``stays_for_acks``: a coordinator stays for its members'
    acks (up to ``timing.ack_linger``) before it finishes (a sidecar, which stays up anyway,
    finishes at the verdict). ``rand`` (uniform in [0, 1)) and ``timing`` are its only sources
    of jitter and pace: its decisions are a function of its inputs, their times and these."""

    def __init__(
        self,
        config: Config,
        *,
        me: Identity,
        now: float,
        rand: Callable[[], float],
        timing: Timing = DEFAULT_TIMING,
        stays_for_acks: bool = True,
        max_in_flight: int = 256,
        held: HeldShare | None = None,
        seed: Mapping[int, Proven] | None = None,
    ) -> None:
        """``held``: the process's bound for unlisted parties; ``seed``: ``agent.core.seeded``."""
        self.config, self.me, self.start = config, me, now
        self._refusing = RefusedAnswers.of(timing, hellos=config.probe.says_hello)
        self.seeded, self.callers = led(config, me, seed, self._refusing.forget)
        self.stays_for_acks, self.timing = stays_for_acks, timing
        self.discovery = discovery_for(
            config, me.barrier, now=now, rand=rand, timing=timing, max_in_flight=max_in_flight
        )
        self.reach = self.discovery.reach
        self.barrier = Barrier(config, me, now=now, rand=rand, timing=timing)
        self.addresses: dict[int, tuple[str, ...]] = {}
        self.deadline, self.finished = now + config.timeout if config.timeout else math.inf, False
        self._next_progress = now + timing.progress_every
        self._refused_at, self._refused_unlogged = -math.inf, 0
        tree, seeded = self.barrier.tree, self.seeded.vouches
        self.vouching = Vouching(config.topology.peers, me.index, tree, seeded=seeded)
        self._admission, self.incoming = contacts(
            config, me, discovery=self.discovery, barrier=self.barrier, heard_of=self._heard_of,
            timing=timing, held=held, vouching=self.vouching, callers=self.callers,
        )  # fmt: skip
        pace = DnsPace(timing, peers=config.topology.peers, now=now, rand=rand)
        self.asking = Asking(pace, self.reach, self._admission, timing, self._refusing)
        own_name = config.topology.display(me.index) if config.topology.index is not None else ""
        self.own = OwnName(
            me, reach=self.reach, barrier=self.barrier, timing=timing,
            checks=bool(self._attempt(me.index, now).instance), name=own_name,
        )  # fmt: skip

    # --- what the runner asks --------------------------------------------------------------------
    @property
    def side(self) -> Coordinator | Member | None:
        return self.barrier.side

    @property
    def verdict(self) -> Released | Aborted | None:
        return self.barrier.verdict

    @property
    def released(self) -> bool:
        """Released: every hello says so (a peer restarting after it is released at once)."""
        return isinstance(self.verdict, Released)

    @property
    def phase(self) -> Phase:  # read a few times a runner call: the verdict once, by position
        released = isinstance(verdict := self.barrier.verdict, Released)
        aborted = not released and verdict is not None
        return phase_of(self.finished, released, aborted, self.reach.done)

    @property
    def status(self) -> Status:
        parts = (self.config, self.reach, self.discovery, self.side, self._admission)
        return Status(*parts, self.asking.slow, self.asking.service_failed)

    def begin(self, now: float) -> list[Effect]:
        seeds = self.seeded.probes(self.reach, self.discovery.learn, now)
        return [Report(self.status.start_line()), *seeds, *self.poll(now)]

    def poll(self, now: float) -> list[Effect]:
        """What is due at ``now`` in this phase: the end of the wait, attempts, rounds, dials,
        progress; in every phase, the checks of what waits to be vouched for. DNS queries by
        name only as the pace allows (``Asking``)."""
        return self.asking.gate(self._polled(now), now, self.side) + self._membership(now)

    def _polled(self, now: float) -> list[Effect]:
        checks: list[Effect] = [Lookup(index) for index in self._admission.take_due(now)]
        if (phase := self.phase) is Phase.FINISHED:
            return self._serving_on(now) + checks
        if (end := self._end(phase, now)) is not None:
            self.finished = True
            # and what serving on has due now: the next wake-up must be after ``now``
            return [end, *self._serving_on(now), *checks]
        if phase in (Phase.RELEASED, Phase.ABORTED):
            return checks  # lingering: the acks (events), the linger bound, held sessions
        return self._due(now) + checks

    def _due(self, now: float) -> list[Effect]:
        """Attempts, rounds, the dial, the look-around and the progress line, as each is due."""
        side, rounds = self.side, self.discovery.take_due(now)  # first: it may schedule names
        out: list[Effect] = [*self.asking.start_attempts(now, self._attempt), *rounds]
        up, fresh = self.barrier.parent, self.timing.refused_reuse  # a fresh answer is reused
        again = self._refusing.addresses(up, now) or self.reach.fresh_at(up, now, fresh)
        out += self.barrier.poll(now, again or self.seeded.dial_at(up), self.reach.newest_at(up))
        if isinstance(side, Coordinator) and self._looking():
            if now >= self.discovery.look_at():
                out += self.discovery.look_around(now, side.not_arrived(self._admission.held_from))
            out += self.own.poll(now)
        if now >= self._next_progress:
            out += [Report(line) for line in self.asking.slow_lines(now)]
            out.append(Report(self.status.progress(now - self.start)))
            self._next_progress = now + self.timing.progress_every
        return out

    def _serving_on(self, now: float) -> list[Effect]:  # after the wait: rounds that vouch
        return self.discovery.take_due(now) if self._admission.waiting else []

    def _attempt(self, index: int, now: float) -> Attempt:
        if (seeded := self.seeded.attempt(index)) is not None:
            return seeded  # where the start barrier proved it: no DNS
        # Own name: asked every time but where only a port refused at its own address (tcp:PORT)
        if index == self.me.index and self.config.probe.says_hello:
            return Attempt(index, self.me.instance)
        reuse = self._refusing.addresses(index, now)
        stale = index == self.me.index and set(reuse) - self.config.own_addresses
        return Attempt(index, "", () if stale else reuse)

    def is_holding(self, conn: int) -> bool:
        """Whether session ``conn`` waits to be vouched for (its messages kept, not acted on)."""
        return self._admission.is_holding(conn)

    def end(self) -> None:  # what this instance held counts no more against the bound
        self._admission.end()

    def next_wakeup(self) -> float:
        """When :meth:`poll` has something to do next, if no event comes first."""
        return min(self._phase_wakeup(), self._admission.next_wakeup())

    def _phase_wakeup(self) -> float:
        phase, side = self.phase, self.side
        leave = side.leave_at() if isinstance(side, Coordinator) else None
        if phase is Phase.FINISHED:
            vouching = self._admission.waiting
            return (self.discovery.next_wakeup() or math.inf) if vouching else math.inf
        if phase is Phase.ABORTED:
            return max(self.barrier.aborted_at + self.timing.abort_linger, leave or -math.inf)
        if phase is Phase.RELEASED:
            return leave or math.inf
        due = self.asking.next_wakeup(self.reach.next_wakeup())
        times = [self.deadline, self._next_progress, math.inf if due is None else due]
        times.append(self.discovery.next_wakeup() or math.inf)
        times.append(self.barrier.next_dial() or math.inf)
        if isinstance(side, Coordinator) and self._looking():
            times += [self.discovery.look_at(), self.own.at]
        return min(times)

    def _end(self, phase: Phase, now: float) -> Effect | None:
        """The exit rules: once there is a verdict, only its own rules end the wait."""
        verdict, side = self.verdict, self.side
        coordinator = side if isinstance(side, Coordinator) else None
        match phase:
            case Phase.ABORTED if isinstance(verdict, Aborted):
                side_done = coordinator.may_leave(now) if coordinator else True
                if side_done and now >= self.barrier.aborted_at + self.timing.abort_linger:
                    return Fail(BarrierAborted(verdict.reason))
            case Phase.RELEASED:
                if coordinator is None or not self.stays_for_acks or coordinator.may_leave(now):
                    return Finish(self.outcome(now))
            case Phase.REACHED if side is None:
                return Finish(self.outcome(now))
            case Phase.DISCOVERING | Phase.REACHED if now >= self.deadline:
                return Fail(self.status.timeout())
        return None

    def outcome(self, now: float) -> Outcome:
        return self.status.outcome(now - self.start, self.addresses)

    # --- events ----------------------------------------------------------------------------------
    def handle(self, event: Input, now: float) -> list[Effect]:
        handled = self._handled(event, now)
        self.asking.heard(event, now, self.side)  # after: a failed dial's hold outlasts its retry
        return self.asking.gate(handled, now, self.side) + self._membership(now)

    def _membership(self, now: float) -> list[Effect]:
        """Past a cut Service answer: the coordinator's hand-outs, a member's report."""
        side, cut, wait = self.side, self.discovery.cut, self.timing.vouch_wait
        if (delay := self.vouching.patience(side, cut=cut, wait=wait)) is not None:
            self._admission.patient(delay, coordinator=isinstance(side, Coordinator))
        return self.vouching.due(self.side, self.reach.peers)

    def _handled(self, event: Input, now: float) -> list[Effect]:
        match event:
            case Attempted():
                return self._attempted(event, now)
            case Swept():
                return self._swept(event, now)
            case AddressProbed():
                return self._address_probed(event, now)
            case Contacted():
                return self.incoming.contacted(event, now)
            case LookedUp():
                return self.incoming.looked_up(event, now)
            case ContactRefused():
                return self._refused(event, now)
            case DialFailed():
                self._refusing.tried(self.barrier.parent, event.refused_at, now)
                self.seeded.dial_failed(self.barrier.parent, event)
                return self.barrier.dial_failed(event, now)
            case Opened() | Received() | Lost():
                return self.incoming.session(event, now)
            case _:
                assert_never(event)

    def _attempted(self, event: Attempted, now: float) -> list[Effect]:
        self._refusing.tried(event.index, event.refused_at, now, busy=timed_out(event.result))
        self.seeded.attempted(event.index, event.result)
        not_before = self.asking.attempted(event.index, event.result, now, late=event.late)
        result = counted_by_name(self.reach, event.index, event.result)
        own = event.index == self.me.index
        if own and self.own.replaced is not None:
            result = Unreached(self.own.replaced)  # for good: a newer instance exists
        if isinstance(result, Reached) and not self.config.probe.says_hello:
            # a look-around's hello: its released flag counts, not its instance (views name
            # none with this probe)
            result = Reached(result.index, "", result.released)
        if isinstance(result, Unreached):
            out = self.own.answered(result.failure, now) if own else []
            self.reach.failed(event.index, result.failure, now, not_before)
            self._admission.named(event.index, event.addresses)  # DNS's answer all the same
            return out + (self.incoming.vouched(now, event.index) if event.addresses else [])
        if isinstance(result, Disagreeing):
            return self._disagreed(result.reason, now)
        sent = self.discovery.probed(event.address, None)  # known now: no round re-probes it
        out = self._reached(event.index, result, event.address, event.addresses, now)
        return out + (self.own.answered(None, now) if own else []) + sent

    def _refused(self, event: ContactRefused, now: float) -> list[Effect]:
        """One line a progress interval at most (a loop of contacts must not flood the log)."""
        if now < self._refused_at + self.timing.progress_every:
            self._refused_unlogged += 1
            return []
        unlogged, self._refused_at, self._refused_unlogged = self._refused_unlogged, now, 0
        return [Report(self.status.refused_line(event.reason, unlogged))]

    def _heard_of(self, index: int, instance: str, now: float) -> list[Effect]:
        """A hello from ``instance`` of ``index`` (a contact, a probe's reply): one newer than
        the instance reached replaced it, to be reached anew (by name, not at a seed) before it
        counts; one newer of this pod's own index may have replaced it: its name is asked."""
        if index == self.me.index:
            return self.own.heard(instance, now)
        restarted = self.reach.note_instance(index, instance)
        up = self.barrier.parent  # (this pod's own index was heard above)
        out = self.barrier.parent_heard(self.reach.peers[up].newest, now) if index == up else []
        if self.verdict is not None or not restarted:
            return out
        old = self.reach.peers[index].address
        self.reach.forget(index, now)
        self.seeded.replaced(index)
        out.append(Report(self.status.restarted_line(index)))
        self.discovery.restarted(old, now)
        if self.side is not None:
            out += self.barrier.act(self.side.unreached(now), now)
        return out

    def _swept(self, event: Swept, now: float) -> list[Effect]:
        self.asking.swept(event.resolution, now)
        before = self._admission.pending()
        out = self.discovery.answered(event.resolution, now)
        if event.resolution.failure is not None:
            return out
        if self.verdict is None and (untied := self.discovery.untie(now)):  # replaced pods
            out += [Report(self.status.restarted_line(index)) for index in untied]
            out += self.barrier.act(self.side.unreached(now), now) if self.side else []
        return out + self.discovery.take_ask_by_name() + self.incoming.answered(before, now)

    def _address_probed(self, event: AddressProbed, now: float) -> list[Effect]:
        result, address = event.result, event.address
        out: list[Effect] = []
        if isinstance(result, Reached):
            peer = peer_at_address(self.me, self.reach, result)
            if isinstance(peer, int) and not self.discovery.counts(address, peer):
                peer = Failure(f"not vouched for as pod {peer}", Cause.NOT_LISTED)
            sent = self.discovery.probed(address, peer if isinstance(peer, Failure) else None)
            if isinstance(peer, int):
                out = self._reached(peer, result, address, (address,), now, attempted=False)
            elif result.index == self.me.index:  # another instance of this pod's index
                out = self._heard_of(self.me.index, result.instance, now)
        else:
            sent = self.discovery.probed(address, result.failure)
            if isinstance(result, Disagreeing):
                out = self._disagreed(result.reason, now)
        self.seeded.probed(address, result, self.reach)  # a seed refuted: by name (pod I's exit)
        return out + sent + self.discovery.take_ask_by_name()

    def _disagreed(self, reason: str, now: float) -> list[Effect]:
        """A pod of this job disagrees on it: everyone stops (at once without a barrier)."""
        if self.side is None:
            self.finished = True
            return [Fail(BarrierAborted(reason))]
        return self.barrier.act(self.side.abort(reason, now), now)

    def _reached(
        self, index: int, result: Reached, address: str, addresses: tuple[str, ...], now: float,
        *, attempted: bool = True,
    ) -> list[Effect]:  # fmt: skip
        """Peer ``index`` answered at ``address`` (this pod itself counts no more once it was
        replaced; a peer it does not target, met at a pushed probe's address, is only heard)."""
        side = self.side
        if index == self.me.index and not self.own.counts():
            return []
        out = self._heard_of(index, result.instance, now)
        if not self.reach.is_target(index):
            return out
        newly = not self.reach.peers[index].reached  # else a re-check's attempt lands here
        self.reach.succeeded(index, address, now, result.instance, lands=attempted)
        out += self._admission.prune(index, (address,))
        if attempted:  # a re-check's answer too (``Asking`` put a check of the name behind it)
            self._admission.named(index, addresses)
        if newly:
            if isinstance(side, Coordinator):
                self.vouching.publish(index, address)
            self._admission.reached(index, address, result.instance, now)
            self.addresses[index] = addresses
            out.append(Report(self.status.reached_line(index, address, now - self.start)))
        if self._admission.waiting:
            out += self.incoming.vouched(now, index, address)
        if newly and self.reach.done:
            out += self._reached_all(now)
        if result.released and side is not None and self.verdict is None:
            self.reach.schedule(self.vouching.told_released(side, self.reach))
            out += self.own.told_released(now)  # joined once its own name still leads here
        return out

    def _reached_all(self, now: float) -> list[Effect]:
        self.discovery.reached_all(now, vouching=self._admission.waiting)
        self.own.waiting(now)
        out: list[Effect] = [Report(self.status.reached_all_line(now - self.start))]
        if self.side is not None:
            view, owed = arrival(self.config, self.me, self.reach)
            out += self.barrier.act(self.side.reached_all(view, now, owed), now)
        return out

    def _looking(self) -> bool:  # a coordinator that reached all and waits looks around
        return self.verdict is None and self.reach.done
