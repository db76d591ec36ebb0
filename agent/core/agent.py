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
from collections.abc import Callable
from typing import assert_never

from agent.config.model import Config, ProbeKind, TrustSource
from agent.core.admission import Admission
from agent.core.answers import counted_by_name, peer_at_address
from agent.core.asking import Asking
from agent.core.barrier import Barrier
from agent.core.causes import Failure
from agent.core.discovery import discovery_for
from agent.core.dnspace import DnsPace
from agent.core.effects import (
    Aborted,
    Attempt,
    Effect,
    Fail,
    Finish,
    Lookup,
    Released,
    Report,
)
from agent.core.incoming import Incoming
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
from agent.core.phase import Phase, phase_of
from agent.core.refused import RefusedAnswers
from agent.core.roles import Coordinator, Member
from agent.core.status import Status
from agent.core.timing import DEFAULT_TIMING, Timing
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
    ) -> None:
        self.config, self.me, self.start = config, me, now
        self.stays_for_acks, self.timing = stays_for_acks, timing
        self.discovery = discovery_for(
            config, now=now, rand=rand, timing=timing, max_in_flight=max_in_flight
        )
        self.reach = self.discovery.reach
        self.barrier = Barrier(config, me, now=now, rand=rand, timing=timing)
        self.addresses: dict[int, tuple[str, ...]] = {}
        self._refusing = RefusedAnswers(timing.refused_reuse, timing.refused_reuse_cap)
        self.deadline = now + config.timeout if config.timeout else math.inf
        self.finished = False
        self._next_progress = now + timing.progress_every
        self._refused_at = -math.inf
        self._refused_unlogged = 0
        # without a token, a contact counts only from an address DNS lists for the Service
        trusting = config.token is not None or config.trust_source == TrustSource.ANY
        lists = self.discovery.lists
        self._admission = Admission(trusting=trusting, reach=self.reach, lists=lists, timing=timing)
        pace = DnsPace(timing, peers=config.topology.peers, now=now, rand=rand)
        self.asking = Asking(pace, self.reach, self._admission, timing)
        self.incoming = Incoming(
            config,
            me,
            discovery=self.discovery,
            barrier=self.barrier,
            admission=self._admission,
            heard_of=self._heard_of,
            timing=timing,
        )

    # --- what the runner asks --------------------------------------------------------------------
    @property
    def side(self) -> Coordinator | Member | None:
        return self.barrier.side

    @property
    def verdict(self) -> Released | Aborted | None:
        return self.barrier.verdict

    @property
    def released(self) -> bool:
        """Whether the barrier has released this pod: every hello it says tells so (a peer
        that restarts after the release is a late joiner, released at once)."""
        return isinstance(self.verdict, Released)

    @property
    def phase(self) -> Phase:
        verdict = self.verdict
        return phase_of(
            finished=self.finished,
            released=isinstance(verdict, Released),
            aborted=isinstance(verdict, Aborted),
            reached_all=self.reach.done,
        )

    @property
    def status(self) -> Status:
        return Status(
            self.config, self.reach, self.discovery, self.side, self._admission, self.asking.slow
        )

    def begin(self, now: float) -> list[Effect]:
        return [Report(self.status.start_line()), *self.poll(now)]

    def poll(self, now: float) -> list[Effect]:
        """What is due at ``now`` in this phase: the end of the wait, attempts, rounds, dials,
        progress; in every phase, the checks of what waits to be vouched for. DNS queries by
        name only as the pace allows (``Asking``)."""
        return self.asking.gate(self._poll(now), now, self.side)

    def _poll(self, now: float) -> list[Effect]:
        checks: list[Effect] = [Lookup(index) for index in self._admission.take_due(now)]
        phase = self.phase
        if phase is Phase.FINISHED:
            return self._serving_on(now) + checks
        if (end := self._end(phase, now)) is not None:
            self.finished = True
            # and what serving on has due now (a round that vouches for a held contact), so
            # that the next wake-up is after ``now``: the runner must not come straight back
            return [end, *self._serving_on(now), *checks]
        if phase in (Phase.RELEASED, Phase.ABORTED):
            return checks  # lingering: the acks (events), the linger bound, held sessions
        return self._due(now) + checks

    def _due(self, now: float) -> list[Effect]:
        """Discovering or waiting for the verdict: attempts, rounds, the member's dial, the
        coordinator's look-around and the progress line, each as it falls due."""
        side = self.side
        due = self.reach.start_due(now, self.asking.limit(now))
        out: list[Effect] = [self._attempt(i, now) for i in due]
        out += self.discovery.take_due(now)
        if isinstance(side, Member):
            out += side.poll(now, self._refusing.addresses(0, now))
        if isinstance(side, Coordinator) and self._looking() and now >= self.discovery.look_at():
            out += self.discovery.look_around(now, side.not_arrived())
        if now >= self._next_progress:
            out += [Report(line) for line in self.asking.slow_lines(now)]
            out.append(Report(self.status.progress(now - self.start)))
            self._next_progress = now + self.timing.progress_every
        return out

    def _serving_on(self, now: float) -> list[Effect]:
        """After the wait, only the rounds that vouch for contacts still waiting (a late
        joiner's session may be one of them)."""
        return self.discovery.take_due(now) if self._admission.waiting else []

    def _attempt(self, index: int, now: float) -> Attempt:
        own = index == self.me.index and self.config.probe.kind is ProbeKind.TCP
        instance = self.me.instance if own and not self.config.probe.port else ""
        return Attempt(index, instance, self._refusing.addresses(index, now))

    def is_holding(self, conn: int) -> bool:
        """Whether session ``conn`` waits to be vouched for (a contact from an address DNS does
        not list yet, without a token): its messages are kept, not acted on, until it is."""
        return self._admission.is_holding(conn)

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
        if isinstance(side, Member):
            times.append(side.next_wakeup() or math.inf)
        if isinstance(side, Coordinator) and self._looking():
            times.append(self.discovery.look_at())
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
        return self.asking.gate(self._handle(event, now), now, self.side)

    def _handle(self, event: Input, now: float) -> list[Effect]:
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
                self.asking.looked_up(event.index, event.resolution, now)
                return self.incoming.looked_up(event, now)
            case ContactRefused():
                return self._refused(event, now)
            case DialFailed():
                self._refusing.tried(0, event.refused_at, now)
                out = self.barrier.dial_failed(event.reason, now)
                self.asking.dialled(now, failed=event.server_failed, side=self.side)
                return out
            case Opened() | Received() | Lost():
                if isinstance(event, Opened) and event.dialled:
                    self.asking.dialled(now, failed=False, side=self.side)
                return self.incoming.session(event, now)
            case _:
                assert_never(event)

    def _attempted(self, event: Attempted, now: float) -> list[Effect]:
        self._refusing.tried(event.index, event.refused_at, now)
        not_before = self.asking.attempted(event.index, event.result, now)
        result = counted_by_name(self.reach, event.index, event.result)
        if isinstance(result, Unreached):
            self.reach.failed(event.index, result.failure, now, not_before)
            return []
        if isinstance(result, Disagreeing):
            return self._disagreed(result.reason, now)
        self.discovery.probed(event.address, None)  # known now: no round re-probes it
        return self._reached(event.index, result, event.address, event.addresses, now)

    def _refused(self, event: ContactRefused, now: float) -> list[Effect]:
        """At most one line per progress interval: a loop of bad contacts must not flood the log
        (the count of those not shown goes with the next one)."""
        if now < self._refused_at + self.timing.progress_every:
            self._refused_unlogged += 1
            return []
        line = self.status.refused_line(event.reason, self._refused_unlogged)
        self._refused_at, self._refused_unlogged = now, 0
        return [Report(line)]

    def _heard_of(self, index: int, instance: str, now: float) -> list[Effect]:
        """A hello from ``instance`` of ``index`` (a contact, or a probe's reply): if it is newer
        than the instance reached, the pod was replaced, and must be reached anew before it
        counts (this pod's view changes, so it arrives again)."""
        restarted = index != self.me.index and self.reach.note_instance(index, instance)
        if self.verdict is not None or not restarted:
            return []
        old = self.reach.peers[index].address
        self.reach.forget(index, now)
        out: list[Effect] = [Report(self.status.restarted_line(index))]
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
        return out + self.discovery.take_ask_by_name() + self.incoming.answered(before, now)

    def _address_probed(self, event: AddressProbed, now: float) -> list[Effect]:
        result, address = event.result, event.address
        out: list[Effect] = []
        if isinstance(result, Reached):
            peer = peer_at_address(self.me, self.reach, result)
            self.discovery.probed(address, peer if isinstance(peer, Failure) else None)
            if isinstance(peer, int):
                out = self._reached(peer, result, address, (address,), now)
        else:
            self.discovery.probed(address, result.failure)
            if isinstance(result, Disagreeing):
                out = self._disagreed(result.reason, now)
        return out + self.discovery.take_ask_by_name()

    def _disagreed(self, reason: str, now: float) -> list[Effect]:
        """A pod of this job disagrees on it: everyone stops (at once without a barrier)."""
        if self.side is None:
            self.finished = True
            return [Fail(BarrierAborted(reason))]
        return self.barrier.act(self.side.abort(reason, now), now)

    def _reached(
        self, index: int, result: Reached, address: str, addresses: tuple[str, ...], now: float
    ) -> list[Effect]:
        """Peer ``index`` answered at ``address``."""
        side = self.side
        out = self._heard_of(index, result.instance, now)
        newly = not self.reach.peers[index].reached
        # also when reached before: an attempt of a reached peer (a re-check) lands here
        self.reach.succeeded(index, address, now, result.instance)
        out += self._admission.prune(index, (address,))
        if newly:
            self.addresses[index] = addresses
            out.append(Report(self.status.reached_line(index, address, now - self.start)))
            if self._admission.waiting:
                out += self.incoming.vouched(now, index, address)
            if self.reach.done:
                out += self._reached_all(now)
        if result.released and side is not None and self.verdict is None:
            out += self.barrier.act(side.peer_released(now), now)
        return out

    def _reached_all(self, now: float) -> list[Effect]:
        self.discovery.reached_all(now, vouching=self._admission.waiting)
        out: list[Effect] = [Report(self.status.reached_all_line(now - self.start))]
        if self.side is not None:
            out += self.barrier.act(self.side.reached_all(self.reach.view(), now), now)
        return out

    def _looking(self) -> bool:
        """A coordinator that has reached everyone and still waits looks around: members that
        another instance of index 0 released never arrive here."""
        return self.verdict is None and self.reach.done
