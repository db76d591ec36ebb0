"""How this pod finds its peers: one object per kind behind one interface, chosen once.

:class:`ByService` (bulk): one DNS query for the whole Service a round instead of one per peer. A
headless Service's own name lists every published pod address, and the tcp probe's hello says
which pod answers at an address, so probing the addresses maps them to peers: one query a round
whatever N is; a stale address (a replaced pod) answers as somebody else or not at all. Its own
name, and past a cut answer its coordinator's and ring neighbour's, are asked for by name first.

:class:`ByName` (``agent.core.byname``): every peer's name resolved and probed (``Reach`` paces
the attempts), for the probes that cannot tell who answers and pods with no Service to ask.

The agent asks either the same questions and never tests which one it has. Pure.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Protocol

from agent.config.model import Config
from agent.core.ambiguity import Ambiguity, paired
from agent.core.byname import ByName, by_name_failure, with_earlier
from agent.core.causes import NOT_ASKED_WHY, TELLING_CAUSES, Cause, Failure
from agent.core.cutanswer import CutAnswer
from agent.core.effects import Attempt, Effect, ProbeAddress, Report, Sweep
from agent.core.inputs import Resolution
from agent.core.learned import Learned
from agent.core.log import LogKind, LogLine
from agent.core.lookaround import LookAround
from agent.core.probebook import ProbeBook
from agent.core.reach import Reach
from agent.core.rounds import Rounds
from agent.core.targets import targets_of
from agent.core.timing import Timing
from agent.protocol.wire import START_BARRIER

__all__ = ["ByName", "ByService", "Discovery", "discovery_for"]


def discovery_for(
    config: Config, barrier: str = START_BARRIER, *, now: float, rand: Callable[[], float],
    timing: Timing, max_in_flight: int,
) -> Discovery:  # fmt: skip
    """Bulk discovery needs the hello to say who answers, and a Service to ask; other probes
    resolve each name. A pod that is not one of the peers (a launcher's one-sided wait) has no
    name of its own to check (and no side in a barrier: config forces ``none``)."""
    t = config.topology
    bulk = config.probe.says_hello
    own = t.index if bulk and t.service_fqdn is not None else None
    targets = targets_of(config, barrier=barrier)
    # On a sparse graph each target is asked for by name: probing every address the Service
    # lists would reach the whole Job from every pod, what the graph is there to avoid (unless
    # this pod reaches every pod by design: an exit barrier's leader, ``agent.core.targets``).
    sparse = targets is not None and not targets.sweeps
    reach = Reach(
        t.peers,
        now=now,
        rand=rand,
        backoff=timing.backoff,
        max_in_flight=max_in_flight,
        scheduled=None if own is None or sparse else {own},
        targets=None if targets is None else targets.indices,
        refused=timing.refused_backoff if bulk else None,  # a peer up says hello (bulk: hellos)
    )
    if own is None:
        return ByName(reach, timing)
    return ByService(
        reach,
        now=now,
        rand=rand,
        timing=timing,
        me=own,
        probes_sweep=not sparse,
        timeout=config.timeout,
    )


#: why a peer is not reached once the Service no longer lists where it was (``untie``)
NOT_LISTED_NOW = Failure(
    "replaced: the Service no longer lists where it was reached; reaching it anew", Cause.RESTARTED
)


class Discovery(Protocol):
    #: which peers are reached, and the attempts of those asked for by name
    reach: Reach

    def take_due(self, now: float) -> list[Effect]:
        """What is due now (a DNS round), started."""
        ...

    def next_wakeup(self) -> float | None: ...

    def lists(self, address: str) -> bool:
        """Whether DNS lists ``address`` for the Service (its last answer did)."""
        ...

    def ask_again(self, now: float) -> bool:
        """A contact came from an address DNS does not list: ask again soon. True when an
        answer will come that may list it (a pod is published a moment after its first
        hello), so the contact is to wait for it; False when none will."""
        ...

    def heard_from(self, index: int, address: str, now: float) -> list[Effect]:
        """Peer ``index`` said hello from ``address``: it is up, so try it now."""
        ...

    def sighted(self, index: int, address: str, now: float) -> list[Effect]:
        """Reached peer ``index`` said hello from ``address``, which DNS has listed since: it
        may have been replaced there, so look again at what answers (never believe the
        hello: the address may have been another's when it was said)."""
        ...

    def probed(self, address: str, failure: Failure | None) -> list[Effect]:
        """A peer was reached at ``address`` (``failure`` None), or a probe of an address of
        the Service did not reach one, and why: the probes that now have room to go out."""
        ...

    def restarted(self, address: str, now: float) -> None:
        """The peer reached at ``address`` restarted: it is to be reached anew."""
        ...

    def reached_all(self, now: float, *, vouching: bool) -> None:
        """Every peer is reached; ``vouching``: contacts still wait for an answer to list them.
        A coordinator that waits on from now looks around (``look_around``)."""
        ...

    def answered(self, resolution: Resolution, now: float) -> list[Effect]:
        """A round's answer (``Sweep``): the probes to start."""
        ...

    def untie(self, now: float) -> list[int]:
        """After an answer: the peers reached where its whole answer (not cut) no longer lists
        them, made to be reached anew (``Reach.forget``: DNS no longer ties that address to
        their index); none where DNS is asked by name."""
        ...

    def take_ask_by_name(self) -> list[Effect]:
        """Once a cut-short answer's probes are in, its left-out peers are asked for by name."""
        ...

    def look_at(self) -> float:
        """When a coordinator that has reached everyone and still waits looks around next."""
        ...

    def look_around(self, now: float, waiting: Sequence[int]) -> list[Effect]:
        """Probe a few of the members that have not arrived (``agent.core.lookaround``)."""
        ...

    @property
    def cut(self) -> bool:
        """Whether a Service answer came back cut short (``agent.core.vouching``)."""
        ...

    def learn(self, index: int, address: str, now: float) -> list[Effect]:
        """A peer passed on DNS evidence that pod ``index`` is at ``address``: probed."""
        ...

    def counts(self, address: str, index: int) -> bool:
        """Whether a hello at ``address`` may count for ``index``: not at an address learnt
        from a peer for another index (DNS evidence names the index there)."""
        ...

    def why_missing(self, index: int) -> Failure:
        """Why peer ``index`` is not reached yet (the text quotes the failures seen; a
        telling cause seen earlier, another token, wins over the vaguer one that followed)."""
        ...

    def silent_causes(self) -> set[Cause]:
        """Why addresses that may be missing peers' failed, where no peer is known to be at
        them (the Service's silent addresses): a timeout's exit code weighs them too."""
        ...


class ByService:
    """Bulk discovery: rounds of one query (``Rounds``), the book of the addresses probed
    (``ProbeBook``), and what a cut-short answer (``CutAnswer``) or a lasting ambiguity
    (``Ambiguity``; ``timeout``: the agent's, None or 0 for none) leaves to names."""

    def __init__(
        self,
        reach: Reach,
        *,
        now: float,
        rand: Callable[[], float],
        timing: Timing,
        me: int = 0,
        probes_sweep: bool = True,
        timeout: float | None = None,
    ) -> None:
        """``me``: this pod's index; ``probes_sweep``: probe the addresses an answer lists (False
        on a sparse graph: the targets are asked for by name, and the answer only says which
        addresses are the Service's)."""
        self.reach, self.me = reach, me
        self._probes_sweep = probes_sweep
        cut_most = None if probes_sweep else timing.cut_rounds
        self.rounds = Rounds(now=now, rand=rand, timing=timing, cut_most=cut_most)
        self._learned = Learned(retry=timing.learned_retry, rand=rand, cap=timing.learned_retry_cap)
        self.book = ProbeBook(reach.max_in_flight)
        self._cut = CutAnswer()
        self.ambiguity = Ambiguity(timing, timeout)
        self._look = LookAround(timing)
        #: every address the last answer listed, and why the last query gave none (None when
        #: it answered)
        self.published: frozenset[str] = frozenset()
        self.failure: Failure | None = Failure("not queried yet", Cause.NOT_TRIED)
        self._whole = False  # the last answer listed every address (not cut, not failed)

    def take_due(self, now: float) -> list[Effect]:
        out: list[Effect] = []
        for address in self._learned.take_due(now, self.reach.unreached_target):
            out += self._probe_pushed(address)
        # the next round waits for this one's probes: it would only parse the same answer again
        if not self.book.round_out and self.rounds.start_due(now):
            out.append(Sweep())
        return out

    def next_wakeup(self) -> float | None:
        rounds = None if self.book.round_out else self.rounds.next_wakeup()
        at = min(rounds or math.inf, self._learned.next_wakeup())
        return None if at == math.inf else at

    def lists(self, address: str) -> bool:
        return address in self.published

    def ask_again(self, now: float) -> bool:
        self.rounds.refresh(now)  # a round soon, even once every peer is reached
        return True

    def heard_from(self, index: int, address: str, now: float) -> list[Effect]:
        """A peer asked for by name is tried by name again; another, not reached, is probed
        where it said hello from, if DNS lists that address (a peer counts as reached only
        at an address DNS gives for the Service); if not, the next round comes soon."""
        if self.reach.is_scheduled(index):
            self.reach.nudge(index, now)
            return []
        if self.reach.peers[index].reached or not self.reach.is_target(index):
            return []
        if address not in self.published and not self._learned.knows(address):
            self.rounds.hurry(now)
            return []
        return self._probe_pushed(address)

    def sighted(self, index: int, address: str, now: float) -> list[Effect]:
        """The address is probed, even if a peer answered there before."""
        return self._probe_pushed(address)

    def probed(self, address: str, failure: Failure | None) -> list[Effect]:
        return [ProbeAddress(address) for address in self.book.probed(address, failure)]

    def restarted(self, address: str, now: float) -> None:
        self.book.forget(address)
        self.rounds.resume(now)

    def reached_all(self, now: float, *, vouching: bool) -> None:
        self.rounds.stop()
        if vouching:  # still to be vouched for: keep asking
            self.rounds.refresh(now)
        self._look.start(now)

    def untie(self, now: float) -> list[int]:
        # A pod is reached only at an address its Service's answer lists (or learnt past a
        # cut); once a whole answer leaves that address out, the pod there was replaced or
        # deleted: an old process still holding a silent session would be counted for ever.
        if not (self._whole and self._probes_sweep):  # (a sparse graph asks targets by name)
            return []
        gone = [
            p for p in self.reach.peers
            if p.reached and p.index != self.me and not self.reach.is_scheduled(p.index)
            and p.address not in self.published
        ]  # fmt: skip
        for peer in gone:
            address = peer.address
            self.reach.forget(peer.index, now, NOT_LISTED_NOW)
            self.restarted(address, now)
        return [peer.index for peer in gone]

    def answered(self, resolution: Resolution, now: float) -> list[Effect]:
        self.failure = resolution.failure
        self._whole = resolution.failure is None and not resolution.truncated
        if resolution.failure is not None:
            if self.rounds.failed(now, server=resolution.failure.cause is Cause.DNS_FAILED):
                self.published = frozenset()
            return []
        self.published = resolution.listed  # shared with whoever holds the answer
        if not self._probes_sweep:  # a sparse graph's round: the answer is all it wanted, and
            self._cut.seen |= resolution.truncated  # whether it was cut (vouching's chain)
        if not self.rounds.answered(now, cut=resolution.truncated) or not self._probes_sweep:
            return []  # a refresh, or a sparse graph's round
        fresh = self.book.start_round(self.published)
        self._cut.answered(truncated=resolution.truncated)
        self._ask_if_ambiguous(now)
        return [ProbeAddress(address) for address in fresh]

    def _ask_if_ambiguous(self, now: float) -> None:
        """The missing peers are asked for by name once the listed addresses that do not
        answer as a peer have been impossible to pair with them for a while."""
        unanswered = len(self._unanswered())
        missing = self.reach.unscheduled_missing() if unanswered else 0
        if self.ambiguity.lasted(missing=missing, unanswered=unanswered, now=now):
            asked = self.reach.missing()[: self.ambiguity.most]
            self.reach.schedule([p.index for p in asked])

    def _unanswered(self) -> dict[str, Failure]:
        """The listed addresses that did not answer as a peer, and why."""
        return {a: f for a, f in self.book.unidentified.items() if a in self.published}

    def take_ask_by_name(self) -> list[Effect]:
        if not self._cut.take_due(round_out=self.book.round_out):
            return []
        lacking = [p.index for p in self.reach.missing()]
        # only the coordinator and the ring neighbour by name, ever: the others' addresses come
        # from the coordinator (``agent.core.vouching``), whatever the wait (by name, each pod
        # would ask for every peer the cut left out: N² queries for the Job, the storm that
        # kept a 128-pod Job from releasing)
        ring = {0, (self.me + 1) % self.reach.size}
        self.reach.schedule([i for i in lacking if i in ring])
        if not self._cut.take_first_telling():
            return []
        listed = len(self.published)
        line = (
            f"the Service's DNS answer is cut short at {listed} addresses: learning the "
            f"{len(lacking)} peers not reached from the coordinator"
        )
        fields = {"listed": listed, "missing": len(lacking)}
        return [Report(LogLine(LogKind.TRUNCATED, line, fields))]

    @property
    def cut(self) -> bool:
        return self._cut.seen

    def counts(self, address: str, index: int) -> bool:
        return address in self.published or self._learned.index_of(address) in (None, index)

    def learn(self, index: int, address: str, now: float) -> list[Effect]:
        peer = self.reach.peers[index]
        if not self._learned.add(index, address, now) or (peer.reached and peer.address == address):
            return []
        return self._probe_pushed(address)  # a reached peer elsewhere: replaced there?

    def look_at(self) -> float:
        return self._look.at

    def look_around(self, now: float, waiting: Sequence[int]) -> list[Effect]:
        out: list[Effect] = []
        for index in self._look.take_batch(waiting, now):
            if self.reach.is_target(index):
                out += self._probe_pushed(self.reach.peers[index].address)
            else:  # a member it does not target, by name (``byname.may_look``)
                out.append(Attempt(index, hello=True))
        return out

    def _probe_pushed(self, address: str) -> list[Effect]:
        """Probe ``address`` first, even if a peer answered there before (it was reused)."""
        if address and self.book.push(address):
            return [ProbeAddress(address, pushed=True)]
        return []

    def why_missing(self, index: int) -> Failure:
        if self.reach.is_scheduled(index):
            return by_name_failure(self.reach, index)
        if self.failure is not None:  # the Service name itself does not resolve
            return self.failure
        listed, unanswered = len(self.published), self._unanswered()
        if not unanswered and self.cut:  # the answer left pods out: it says nothing of this one
            return Failure(f"{NOT_ASKED_WHY} at {listed} addresses", Cause.NOT_ASKED)
        if not unanswered:
            why = f"not in DNS: not among the {listed} addresses of the Service"
            return Failure(why, Cause.NOT_LISTED)
        telling = self.book.telling
        if paired(self.reach.unscheduled_missing(), len(unanswered)):
            [(address, failure)] = unanswered.items()
            why = with_earlier(failure, telling.get(address))
            at = f"at {address} (the one address of the Service not answering as a peer): "
            return Failure(at + why, (telling.get(address) or failure).cause)
        # Not paired yet (``Ambiguity``): the missing one may be at any of them, or at none;
        # when they all failed for one reason, that reason is the cause.
        shown = ", ".join(
            f"{a} ({with_earlier(f, telling.get(a))})" for a, f in list(unanswered.items())[:3]
        )
        why = f"not found at the {listed} addresses of the Service; not answering as a peer: "
        return Failure(
            why + shown, _commonest([telling.get(a) or f for a, f in unanswered.items()])
        )

    def silent_causes(self) -> set[Cause]:
        """Why the listed addresses that never answered as a peer failed (what they told
        first: another token), whichever missing peer each may be."""
        telling = self.book.telling
        return {(telling.get(a) or f).cause for a, f in self._unanswered().items()}


def _commonest(failures: list[Failure]) -> Cause:
    """The cause to act on (exit code, hints) when silent addresses cannot be paired with the
    missing peers: a telling one (another token) if any, else the commonest; never "not
    listed", since they are."""
    causes = [f.cause for f in failures]
    told = sorted({c for c in causes if c in TELLING_CAUSES}, key=lambda c: c.name)
    return told[0] if told else max(set(causes), key=lambda c: (causes.count(c), c.name))
