"""What comes in from other pods, before it counts: hellos, members' sessions, and the lookups
that re-check what waits, all through :class:`~agent.core.admission.Admission`.

A hello from an address DNS vouches for is news of its pod (restarted? try it now); one from
elsewhere is only a hint, never believed; a stranger's (another job, another run) is nothing.
A member's session from elsewhere is held, and handed to the barrier with what its member said
once DNS vouches for it. Pure: :class:`agent.core.agent.Agent` routes these events here.
"""

from __future__ import annotations

from collections.abc import Callable

from agent.config.model import Config, TrustSource
from agent.core.admission import Admission
from agent.core.barrier import Barrier
from agent.core.callers import Callers
from agent.core.discovery import Discovery
from agent.core.effects import Close, Effect
from agent.core.heldshare import HeldShare
from agent.core.inputs import Contacted, LookedUp, Lost, Opened, Received
from agent.core.roles import Coordinator, Member
from agent.core.timing import Timing
from agent.core.vouching import Vouching
from agent.protocol.handshake import Match, compare
from agent.protocol.wire import Identity, Members, Vouch

__all__ = ["Incoming", "contacts"]

#: (index, instance, now): what a vouched-for hello from ``instance`` of peer ``index`` means
#: to the agent (its pod may have been replaced)
HeardOf = Callable[[int, str, float], list[Effect]]


class Incoming:
    def __init__(
        self,
        config: Config,
        me: Identity,
        *,
        discovery: Discovery,
        barrier: Barrier,
        admission: Admission,
        heard_of: HeardOf,
        timing: Timing,
        vouching: Vouching | None = None,
        callers: Callers | None = None,
    ) -> None:
        """``callers``: pod I's start barrier with ``--exit-led-by I`` keeps who said hello."""
        self.config, self.me, self.timing, self.callers = config, me, timing, callers
        self.vouching = vouching or Vouching(me.peers, me.index)
        #: what a report vouches for while held sessions are handed on (``vouched``)
        self._chain: list[tuple[int | None, str | None]] | None = None
        self.discovery, self.barrier, self.admission = discovery, barrier, admission
        self.reach = discovery.reach
        self._heard_of = heard_of

    # --- hellos ----------------------------------------------------------------------------------
    def contacted(self, event: Contacted, now: float) -> list[Effect]:
        """A pod said hello: if it is a peer, it is up, so try it now rather than after a
        backoff. One from an address DNS does not vouch for counts for nothing
        (``_unvouched``), and a stranger's for nothing at all."""
        theirs = event.hello.identity
        if not event.address or not 0 <= theirs.index < self.me.peers:
            return []
        match = compare(self.me, theirs, expected_index=None)[0]
        if match is Match.STRANGER:
            return []
        if match is Match.SAME and self.callers is not None:  # listed or not: ``callers``
            self.callers.heard(theirs.index, event.address, theirs.instance)
        if not (event.listed or self.admission.verified(theirs.index, event.address)):
            return self._unvouched(event, now, agrees=match is Match.SAME)
        if match is not Match.SAME:
            return []  # a disagreement is acted on from a probe or a session, not a hello
        out = self._heard_of(theirs.index, theirs.instance, now)
        out += self.admission.prune(theirs.index, (event.address,))
        return out + self.discovery.heard_from(theirs.index, event.address, now)

    def _unvouched(self, event: Contacted, now: float, *, agrees: bool) -> list[Effect]:
        """A hello from an address not vouched for: what it claims is not believed (a newer
        instance claimed from there would make every pod forget the real one), and it is named
        in the log unless an answer lists it. If it ``agrees`` on the job, it hints that its pod
        is up (try it soon); and a peer heard from an address not vouched for may have been
        replaced there: a sighting, kept until DNS says whether the address is its (for an
        index not reached yet, until it is reached: the old instance may answer first)."""
        index = event.hello.identity.index
        self.admission.note(index, event.address)
        if not agrees:
            return []
        if index != self.me.index:
            self.admission.sight(index, event.address, event.hello.identity.instance, now)
        if self.reach.awaits_name(index):
            return []  # attempted by name: nudged at the pace of claims (``Asking.heard``)
        return self.discovery.heard_from(index, event.address, now)

    # --- sessions --------------------------------------------------------------------------------
    def session(self, event: Opened | Received | Lost, now: float) -> list[Effect]:
        held = self.admission.absorb(event)  # a session from an address not vouched for yet
        if held is not None:
            return held
        if isinstance(event, Received):
            return self._carried(event, now)
        if isinstance(event, Lost):
            return self.barrier.carried(event, now)
        side, theirs = self.barrier.side, event.hello.identity
        if not event.dialled and isinstance(side, Coordinator) and theirs.index in side.members:
            # Another job's pod is refused at once (a refusal gives nothing away); one that
            # claims to be of this job counts, or aborts it, only from a listed address.
            stranger = compare(self.me, theirs, expected_index=None)[0] is Match.STRANGER
            if not stranger and not self.admission.verified(theirs.index, event.address):
                return self._hold(event, now)
        return self._opened(event, now)

    def _opened(self, event: Opened, now: float) -> list[Effect]:
        """A session that counts: handed to the barrier; a member's, at the coordinator, is
        evidence of where its pod is (its address verified), handed on past a cut."""
        out = self.barrier.opened(event, now)
        side, theirs = self.barrier.side, event.hello.identity
        if isinstance(side, Coordinator) and side.sessions.get(event.conn) == theirs.index:
            self.vouching.joined(event.conn)
            self.vouching.publish(theirs.index, event.address)
        return out

    def _carried(self, event: Received, now: float) -> list[Effect]:
        """A message on a session that counts: membership's own (``agent.core.vouching``)
        here, the barrier's to the barrier."""
        message, side = event.message, self.barrier.side
        if isinstance(message, Vouch) and isinstance(side, Coordinator):
            reporter = side.sessions.get(event.conn)
            if reporter is None:
                return self.barrier.carried(event, now)  # closed: not a counted session
            if not self.vouching.reported(reporter, message):
                return []
            learnt = self.discovery.learn(message.index, message.address, now)
            return learnt + self.vouched(now, message.index, message.address)
        if isinstance(message, Members) and isinstance(side, Member) and event.conn == side.conn:
            self.vouching.on = True
            out: list[Effect] = []
            for index, address in self.vouching.learned(message):
                out += self.discovery.learn(index, address, now)
                out += self.vouched(now, index, address)
            return out
        return self.barrier.carried(event, now)

    def _hold(self, event: Opened, now: float) -> list[Effect]:
        """A member's session from an address not vouched for: held until DNS says whose it
        is, unless it is an older instance than one heard of (it can never count). One of a
        newer instance than the member's session counted here contests it: no release on
        that session until the claimed name's answer has ruled (asked at once)."""
        theirs, side = event.hello.identity, self.barrier.side
        if self.reach.stale(theirs.index, theirs.instance):
            return [Close(event.conn)]
        self.discovery.ask_again(now)
        coordinator = side if isinstance(side, Coordinator) else None
        unconnected = coordinator.unconnected() if coordinator else 0
        urgent = coordinator is not None and coordinator.contested_by(theirs)
        return self.admission.hold(event, now, unconnected=unconnected, urgent=urgent)

    # --- what vouches ----------------------------------------------------------------------------
    def vouched(
        self, now: float, index: int | None = None, address: str | None = None
    ) -> list[Effect]:
        """A fresh DNS answer or a peer reached (``index`` at ``address``, if given): a held
        session it vouches for is handed to the barrier with what its member said, its hello
        heard as a contact's (it is live, and from where its pod is now); an address a
        sighting came from is probed (what answers there counts, not the claim). A session
        handed on may carry a report that vouches for the next (a chain round the ring): a
        loop, not a recursion as deep as the chain."""
        if self._chain is not None:  # inside the loop below: it takes this too
            self._chain.append((index, address))
            return []
        self._chain = [(index, address)]
        out: list[Effect] = []
        try:
            while self._chain:
                out += self._vouched_once(now, *self._chain.pop())
        finally:
            self._chain = None
        return out

    def _vouched_once(self, now: float, index: int | None, address: str | None) -> list[Effect]:
        sightings, sessions = self.admission.take_vouched(index, address)
        out: list[Effect] = []
        for claimed, at in sightings:
            out += self.discovery.sighted(claimed, at, now)
        for held in sessions:
            theirs = held.opened.hello.identity
            out += self._heard_of(theirs.index, theirs.instance, now)
            out += self._opened(held.opened, now)
            for message in held.replay():
                out += self._carried(message, now)
        return out

    def answered(self, before: set[str], now: float) -> list[Effect]:
        """The Service's name answered: what it vouches for, and what it does not (what waited
        ``before`` it), named."""
        return self.vouched(now) + self._report(before, now)

    def looked_up(self, event: LookedUp, now: float) -> list[Effect]:
        """A claimed pod's name, asked again: what waits claiming it from an address the
        answer gives counts now; from one it gives for another, never."""
        before = self.admission.pending(event.index)
        out = self.admission.looked_up(event.index, event.resolution, now)
        out += self.vouched(now, index=event.index)
        if isinstance(side := self.barrier.side, Coordinator):  # what contested is ruled on
            out += self.barrier.act(side.recount(now), now)
        return out + self._report(before, now)

    def _report(self, before: set[str], now: float) -> list[Effect]:
        warn_after, port = self.timing.unlisted_warn_after, self.config.port
        return [*self.admission.report_ignored(before, now, port=port, warn_after=warn_after)]


def contacts(
    config: Config,
    me: Identity,
    *,
    discovery: Discovery,
    barrier: Barrier,
    heard_of: HeardOf,
    timing: Timing,
    held: HeldShare | None,
    vouching: Vouching,
    callers: Callers | None = None,
) -> tuple[Admission, Incoming]:
    """Who may count (admission) and how a contact is taken in (incoming). Without a token, a
    contact counts only from an address DNS gives (``agent.core.admission``)."""
    trusting = config.token is not None or config.trust_source == TrustSource.ANY
    admission = Admission(
        trusting=trusting,
        reach=discovery.reach,
        lists=discovery.lists,
        timing=timing,
        share=held,
        vouches=vouching.vouches,
    )
    if isinstance(barrier.side, Coordinator):  # held sessions contest counted ones
        barrier.side.contests = admission.contests
        barrier.side.urge = admission.urge
    incoming = Incoming(
        config,
        me,
        discovery=discovery,
        barrier=barrier,
        admission=admission,
        heard_of=heard_of,
        timing=timing,
        vouching=vouching,
        callers=callers,
    )
    return admission, incoming
