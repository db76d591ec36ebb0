"""The agent as one pure state machine: events and ``now`` in, effects out (as h11's Connection).

:class:`Agent` owns everything the agent decides: which peers to resolve and probe and when
(``Reach``, ``Sweep``), what a hello from a restarted peer means, when this pod has reached
everyone, its side of the barrier (``Coordinator`` or ``Member``), what it reports, and when the
wait ends and how. The runner only performs the effects and feeds back what happened; the
in-memory cluster of the tests drives this same class.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from agent.config.model import BarrierMode, Config, ProbeKind, TrustSource
from agent.core.admission import Admission
from agent.core.causes import Cause, Failure
from agent.core.effects import (
    Aborted,
    Attempt,
    Close,
    Effect,
    Fail,
    Finish,
    ProbeAddress,
    Query,
    Released,
    Report,
    Send,
)
from agent.core.inputs import (
    AddressProbed,
    Attempted,
    Contacted,
    ContactRefused,
    DialFailed,
    Disagreeing,
    Input,
    Lost,
    Opened,
    Reached,
    Received,
    Swept,
    Unreached,
)
from agent.core.log import LogKind, LogLine
from agent.core.lookaround import LookAround
from agent.core.outcome import Outcome
from agent.core.reach import Reach
from agent.core.roles import Action, Coordinator, Member
from agent.core.status import Status
from agent.core.sweep import Sweep
from agent.core.timing import DEFAULT_TIMING, Timing
from agent.errors import BarrierAborted
from agent.protocol.handshake import Match, compare
from agent.protocol.wire import Identity, Refuse

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
        t = config.topology
        self.config, self.me, self.start = config, me, now
        self.stays_for_acks = stays_for_acks
        self.timing = timing
        # Bulk discovery needs the hello to say who answers, and a Service to ask; other probes
        # resolve each name. A pod that is not one of the peers (a launcher's one-sided wait)
        # has no name of its own to check and no side in a barrier (config forces `none`).
        bulk = config.probe.kind is ProbeKind.TCP and config.probe.port is None
        bulk = bulk and t.index is not None and t.service_fqdn is not None
        self.reach = Reach(
            t.peers,
            now=now,
            rand=rand,
            backoff=timing.backoff,
            max_in_flight=max_in_flight,
            scheduled={t.index} if bulk and t.index is not None else None,
        )
        self.sweep = Sweep(now=now, rand=rand, timing=timing) if bulk else None
        self.side: Coordinator | Member | None = None
        if config.barrier is BarrierMode.ALL and t.index is not None:
            self.side = (
                Coordinator(me, ack_linger=timing.ack_linger)
                if t.index == 0
                else Member(now=now, rand=rand, backoff=timing.backoff)
            )
        self.addresses: dict[int, tuple[str, ...]] = {}
        self.deadline = now + config.timeout if config.timeout else math.inf
        self.finished = False
        self._next_progress = now + timing.progress_every
        self._aborted_at = math.inf
        self._look = LookAround(timing)
        self._refused_at = -math.inf
        self._refused_unlogged = 0
        self._by_name_reported = False
        # without a token, a contact counts only from an address DNS lists for the Service
        trusting = config.token is not None or config.trust_source == TrustSource.ANY
        self._admission = Admission(trusting=trusting)

    # --- what the runner asks --------------------------------------------------------------------
    @property
    def verdict(self) -> Released | Aborted | None:
        return self.side.verdict if self.side is not None else None

    @property
    def released(self) -> bool:
        """Whether the barrier has released this pod: every hello it says tells so (a peer
        that restarts after the release is a late joiner, released at once)."""
        return isinstance(self.verdict, Released)

    @property
    def status(self) -> Status:
        return Status(self.config, self.reach, self.sweep, self.side)

    def begin(self, now: float) -> list[Effect]:
        t = self.config.topology
        who = f"pod {t.index} of {t.peers}" if t.index is not None else "not one of the peers"
        line = (
            f"topology {t.describe()}; {who}: peers {t.display(0)} … {t.display(t.peers - 1)}, "
            f"probe {self.config.probe}, barrier {self.config.barrier}, "
            f"listening on port {self.config.port}"
        )
        return [Report(LogLine(LogKind.START, line)), *self.poll(now)]

    def poll(self, now: float) -> list[Effect]:
        """What is due at ``now``: the end of the wait, attempts, rounds, dials, progress."""
        if self.finished:  # a sidecar serving on: only rounds that vouch for late contacts
            sweep = self._vouching()
            return [Query()] if sweep is not None and sweep.query_due(now) else []
        out: list[Effect] = []
        if (end := self._end(now)) is not None:
            self.finished = True
            # and what serving on has due now (a round that vouches for a held contact), so
            # that the next wake-up is after ``now``: the runner must not come straight back
            return [end, *self.poll(now)]
        if self.verdict is not None:
            return out  # lingering: only the acks (events) or the linger bound matter now
        out += [self._attempt(index) for index in self.reach.start_due(now)]
        if self.sweep is not None and self.sweep.query_due(now):
            out.append(Query())
        if isinstance(self.side, Member):
            out += self.side.poll(now)
        if self._looking() and now >= self._look.at:
            out += self._look_around(now)
        if now >= self._next_progress:
            out.append(Report(self.status.progress(now - self.start)))
            self._next_progress = now + self.timing.progress_every
        return out

    def _attempt(self, index: int) -> Attempt:
        own = index == self.me.index and self.config.probe.kind is ProbeKind.TCP
        return Attempt(index, self.me.instance if own and not self.config.probe.port else "")

    def is_holding(self, conn: int) -> bool:
        """Whether session ``conn`` waits to be vouched for (a contact from an address DNS does
        not list yet, without a token): its messages are kept, not acted on, until it is."""
        return self._admission.is_holding(conn)

    def next_wakeup(self) -> float:
        """When :meth:`poll` has something to do next, if no event comes first."""
        side, verdict = self.side, self.verdict
        leave = side.leave_at() if isinstance(side, Coordinator) else None
        if self.finished:
            sweep = self._vouching()
            return (sweep.next_wakeup() or math.inf) if sweep is not None else math.inf
        if isinstance(verdict, Aborted):
            return max(self._aborted_at + self.timing.abort_linger, leave or -math.inf)
        if verdict is not None:
            return leave or math.inf
        times = [self.deadline, self._next_progress, self.reach.next_wakeup() or math.inf]
        if self.sweep is not None:
            times.append(self.sweep.next_wakeup() or math.inf)
        if isinstance(side, Member):
            times.append(side.next_wakeup() or math.inf)
        if self._looking():
            times.append(self._look.at)
        return min(times)

    def _end(self, now: float) -> Effect | None:
        verdict, side = self.verdict, self.side
        coordinator = side if isinstance(side, Coordinator) else None
        if isinstance(verdict, Aborted):
            side_done = coordinator.may_leave(now) if coordinator else True
            if side_done and now >= self._aborted_at + self.timing.abort_linger:
                return Fail(BarrierAborted(verdict.reason))
        elif isinstance(verdict, Released):
            if coordinator is None or not self.stays_for_acks or coordinator.may_leave(now):
                return Finish(self.outcome(now))
        elif side is None and self.reach.done:
            return Finish(self.outcome(now))
        elif now >= self.deadline:  # once there is a verdict, only its own rules end the wait
            return Fail(self.status.timeout())
        return None

    def outcome(self, now: float) -> Outcome:
        return self.status.outcome(now - self.start, self.addresses)

    # --- events ----------------------------------------------------------------------------------
    def handle(self, event: Input, now: float) -> list[Effect]:
        if isinstance(event, Attempted):
            return self._attempted(event, now)
        if isinstance(event, Swept):
            return self._swept(event, now)
        if isinstance(event, AddressProbed):
            return self._address_probed(event, now)
        if isinstance(event, Contacted):
            return self._contacted(event, now)
        if isinstance(event, ContactRefused):
            return self._refused(event, now)
        if isinstance(event, DialFailed):
            if isinstance(self.side, Member):
                return self._act(self.side.disconnected(event.reason, now), now)
            return []
        return self._session(event, now)

    def _attempted(self, event: Attempted, now: float) -> list[Effect]:
        result = event.result
        if isinstance(result, Reached) and self.reach.stale(event.index, result.instance):
            why = f"an older instance of pod {event.index} answers"
            result = Unreached(Failure(why, Cause.OTHER_INSTANCE))
        if isinstance(result, Unreached):
            self.reach.failed(event.index, result.failure, now)
            return []
        if isinstance(result, Disagreeing):
            return self._disagreed(result.reason, now)
        if self.sweep is not None:  # known now: no round re-probes it
            self.sweep.probed(event.address, None)
        return self._reached(event.index, result, event.address, event.addresses, now)

    def _session(self, event: Opened | Received | Lost, now: float) -> list[Effect]:
        side = self.side
        if self._admission.absorb(event):  # a session from an address not vouched for yet
            return []
        incoming = isinstance(event, Opened) and not event.dialled
        if incoming and isinstance(side, Coordinator):
            assert isinstance(event, Opened)
            theirs = event.hello.identity
            # Another job's pod is refused at once (a refusal gives nothing away); one that
            # claims to be of this job counts, or aborts it, only from a listed address.
            stranger = compare(self.me, theirs, expected_index=None)[0] is Match.STRANGER
            if not stranger and not self._verified(theirs.index, event.address):
                self._admission.hold(event)
                return self._unlisted(event.address, now)
        if isinstance(event, Opened):
            if event.dialled and isinstance(side, Member):
                return self._act(side.opened(event.conn, now), now)
            if not event.dialled and isinstance(side, Coordinator):
                return self._act(side.joined(event.conn, event.hello, now), now)
            why = f"pod {self.me.index} is not the coordinator"
            return [Send(event.conn, Refuse(why)), Close(event.conn)]
        if isinstance(side, Coordinator):
            if isinstance(event, Received):
                return self._act(side.received(event.conn, event.message, now), now)
            return self._act(side.closed(event.conn, now), now)
        if isinstance(side, Member) and event.conn == side.conn:
            if isinstance(event, Received):
                return self._act(side.received(event.message, now), now)
            return self._act(side.disconnected(event.reason, now), now)
        return [Close(event.conn)] if isinstance(event, Received) else []

    def _act(self, actions: list[Action], now: float) -> list[Effect]:
        """The barrier side's actions, with the abort's time noted and reported."""
        out: list[Effect] = []
        for action in actions:
            out.append(action)
            if isinstance(action, Aborted):
                self._aborted_at = now
                out.append(Report(LogLine(LogKind.ABORTED, f"barrier aborted: {action.reason}")))
        return out

    def _refused(self, event: ContactRefused, now: float) -> list[Effect]:
        """At most one line per progress interval: a loop of bad contacts must not flood the log
        (the count of those not shown goes with the next one)."""
        if now < self._refused_at + self.timing.progress_every:
            self._refused_unlogged += 1
            return []
        more = f" (and {self._refused_unlogged} more)" if self._refused_unlogged else ""
        self._refused_at, self._refused_unlogged = now, 0
        return [
            Report(LogLine(LogKind.CONTACT_REFUSED, f"refused a contact: {event.reason}{more}"))
        ]

    def _vouching(self) -> Sweep | None:
        """The sweep, while contacts wait for a DNS answer to vouch for them (asked for even
        when serving on: a late joiner's session may be one of them)."""
        return self.sweep if self._admission.waiting else None

    def _verified(self, index: int, address: str) -> bool:
        """Whether a contact from ``address`` claiming ``index`` is one of this Job's pods:
        with a token (proven by the handshake) or ``--trust-source any``, always; else when
        DNS lists the address for the Service, or this pod reached ``index`` there."""
        if self._admission.trusting:
            return True
        if 0 <= index < self.me.peers and self.reach.peers[index].address == address:
            return bool(address)
        return self.sweep is not None and address in self.sweep.published

    def _unlisted(self, address: str, now: float) -> list[Effect]:
        """A contact from an address DNS does not list: ask again soon (a late pod is
        published a moment after its first hello)."""
        if self.sweep is not None:
            self.sweep.refresh(now)  # a round soon, even once every peer is reached
        return []

    def _vouched(self, now: float) -> list[Effect]:
        """A fresh DNS answer or a peer reached: the contacts and sessions it now vouches for
        are handled as if they had just come."""
        out: list[Effect] = []
        for contact in self._admission.take_vouched_contacts(self._verified):
            out += self._contacted(contact, now)
        for opened, messages in self._admission.take_vouched_sessions(self._verified):
            out += self._session(opened, now)
            for message in messages:
                out += self._session(Received(opened.conn, message), now)
        return out

    def _contacted(self, event: Contacted, now: float) -> list[Effect]:
        """A pod said hello: if it is a peer, it is up, so probe it now rather than after a
        backoff. A new instance of a peer reached before must be reached again before this pod
        counts as having reached everyone (its view changes, so its arrival is made anew)."""
        theirs = event.hello.identity
        index = theirs.index
        if not event.address:
            return []
        listed = event.listed or self._verified(index, event.address)
        if self.sweep is not None and not listed:
            self._admission.keep(event)  # for a fresh answer to vouch for
            return self._unlisted(event.address, now)
        if compare(self.me, theirs, expected_index=None)[0] is not Match.SAME:
            return []
        if not 0 <= index < self.me.peers:
            return []
        out = self._heard_of(index, theirs.instance, now)
        if self.sweep is None or self.reach.is_scheduled(index):  # asked for by name
            self.reach.nudge(index, now)
        elif not self.reach.peers[index].reached and self.sweep.pushed(event.address, now):
            out.append(ProbeAddress(event.address, pushed=True))
        return out

    def _heard_of(self, index: int, instance: str, now: float) -> list[Effect]:
        """A hello from ``instance`` of ``index`` (a contact, or a probe's reply): if it is newer
        than the instance reached, the pod was replaced, and must be reached anew before it
        counts (this pod's view changes, so it arrives again)."""
        restarted = index != self.me.index and self.reach.note_instance(index, instance)
        if self.verdict is not None or not restarted:
            return []
        old = self.reach.peers[index].address
        self.reach.forget(index, now)
        name = self.config.topology.display(index)
        line = f"{name} restarted: reaching its new instance before counting it again"
        out: list[Effect] = [Report(LogLine(LogKind.RESTARTED, line, {"peer": index}))]
        if self.sweep is not None:
            self.sweep.forget(old)
            self.sweep.resume(now)
        if self.side is not None:
            out += self._act(self.side.unreached(now), now)
        return out

    def _swept(self, event: Swept, now: float) -> list[Effect]:
        assert self.sweep is not None
        resolution = event.resolution
        if resolution.failure is not None:
            self.sweep.failed(resolution.failure, now)
            return []
        before = self._admission.pending()
        fresh = self.sweep.answered(resolution.addresses, now, truncated=resolution.truncated)
        out: list[Effect] = [ProbeAddress(address) for address in fresh]
        out += self._ask_by_name() + self._vouched(now)
        out += self._admission.report_ignored(before, self.config.port)
        if self._admission.waiting:  # not listed yet: ask again (about once a second)
            self.sweep.refresh(now)
        return out

    def _ask_by_name(self) -> list[Effect]:
        """A cut-short Service answer (thousands of pods) and its probes are done: the peers
        still unreached may be among those it left out, so each is asked for by name."""
        assert self.sweep is not None
        if not self.sweep.ask_by_name():
            return []
        lacking = [p.index for p in self.reach.missing()]
        self.reach.schedule(lacking)
        if self._by_name_reported:
            return []
        self._by_name_reported = True
        listed = len(self.sweep.published)
        line = (
            f"the Service's DNS answer is cut short at {listed} addresses: asking for the "
            f"{len(lacking)} peers not reached by name"
        )
        return [
            Report(LogLine(LogKind.TRUNCATED, line, {"listed": listed, "by_name": len(lacking)}))
        ]

    def _address_probed(self, event: AddressProbed, now: float) -> list[Effect]:
        assert self.sweep is not None
        result, address = event.result, event.address
        out: list[Effect] = []
        if isinstance(result, Disagreeing):
            self.sweep.probed(address, result.failure)
            out = self._disagreed(result.reason, now)
        elif isinstance(result, Unreached):
            self.sweep.probed(address, result.failure)
        elif (index := self._peer_answering(result)) is None:
            why = f"an older instance of pod {result.index} answers"
            self.sweep.probed(address, Failure(why, Cause.OTHER_INSTANCE))
        else:
            self.sweep.probed(address, None)
            out = self._reached(index, result, address, (address,), now)
        return out + self._ask_by_name()

    def _peer_answering(self, result: Reached) -> int | None:
        """The peer whose agent answered an address, if it counts: not an older instance of
        it, nor another instance of this pod's own index (an old pod still running)."""
        index = result.index
        if index is None or not 0 <= index < self.me.peers:
            return None
        if index == self.me.index and result.instance != self.me.instance:
            return None
        return None if self.reach.stale(index, result.instance) else index

    def _disagreed(self, reason: str, now: float) -> list[Effect]:
        """A pod of this job disagrees on it: everyone stops (at once without a barrier)."""
        if self.side is None:
            self.finished = True
            return [Fail(BarrierAborted(reason))]
        return self._act(self.side.abort(reason, now), now)

    def _reached(
        self,
        index: int,
        result: Reached,
        address: str,
        addresses: tuple[str, ...],
        now: float,
    ) -> list[Effect]:
        """Peer ``index`` answered at ``address``."""
        side = self.side
        out = self._heard_of(index, result.instance, now)
        if not self.reach.peers[index].reached:
            self.reach.succeeded(index, address, now, result.instance)
            self.addresses[index] = addresses
            elapsed = round(now - self.start, 3)
            line = (
                f"reached {self.config.topology.display(index)} at {address} "
                f"({self.config.probe}) after {elapsed:.3f}s"
            )
            fields = {"peer": index, "address": address, "probe": str(self.config.probe)}
            out.append(Report(LogLine(LogKind.REACHED, line, {**fields, "elapsed": elapsed})))
            if self._admission.waiting:
                out += self._vouched(now)
            if self.reach.done:
                out += self._reached_all(now)
        if result.released and side is not None and self.verdict is None:
            out += self._act(side.peer_released(now), now)
        return out

    def _reached_all(self, now: float) -> list[Effect]:
        if self.sweep is not None:
            self.sweep.stop()
            if self._admission.waiting:  # still to be vouched for: keep asking
                self.sweep.refresh(now)
        elapsed = round(now - self.start, 3)
        line = f"reached all {self.me.peers} peers"
        out: list[Effect] = [Report(LogLine(LogKind.REACHED_ALL, line, {"elapsed": elapsed}))]
        self._look.start(now)
        if self.side is not None:
            out += self._act(self.side.reached_all(self.reach.view(), now), now)
        return out

    # --- a coordinator that waits with everyone reached ------------------------------------------
    def _looking(self) -> bool:
        return (
            isinstance(self.side, Coordinator)
            and self.sweep is not None
            and self.verdict is None
            and self.reach.done
        )

    def _look_around(self, now: float) -> list[Effect]:
        """Probe a few members that have not arrived here (agent.core.lookaround)."""
        assert isinstance(self.side, Coordinator) and self.sweep is not None
        out: list[Effect] = []
        for index in self._look.take_batch(self.side.not_arrived(), now):
            address = self.reach.peers[index].address
            if address and self.sweep.probe(address, push=True):
                out.append(ProbeAddress(address, pushed=True))
        return out
