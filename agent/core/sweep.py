"""Bulk discovery: one DNS query for the whole Service per round, instead of one per peer.

A headless Service's own name lists every published pod address. The agent's hello says which
pod answers at an address, so probing the addresses maps them to peers: one query per round
whatever N is, and a stale address (a replaced pod) simply answers as somebody else or not at all.
Rounds go about once a second once the Service answers (from 0.1 s up while it does not), and
stop once every peer is reached.

Pure: the runner reports answers and probe results with the time; this says what to do next.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

from agent.core.backoff import Backoff
from agent.core.causes import NOT_TRIED, TELLING_CAUSES, Failure
from agent.core.timing import DEFAULT_TIMING, Timing

__all__ = ["Sweep"]


class Sweep:
    def __init__(
        self,
        *,
        now: float,
        rand: Callable[[], float],
        timing: Timing = DEFAULT_TIMING,
    ) -> None:
        self._backoff: Backoff = timing.backoff
        self._min_gap, self._quiet = timing.round_min_gap, timing.round_quiet
        self._rand = rand
        self._next_query: float | None = now
        self._querying = False
        self._last_query = -math.inf
        self._hurry = False
        #: how soon after the last round a push brings the next one: doubles with each round
        #: so brought forward while pods keep arriving, back to the minimum after a quiet while
        self._hurry_gap = self._min_gap
        self._last_push = -math.inf
        self._next_hurried = False
        self._failures = 0  # rounds in a row without an answer: those back off from 0.1 s
        self._once = False  # the round due is a refresh: no more after it (``refresh``)
        self.published: frozenset[str] = frozenset()
        #: why the last query gave no answer (NXDOMAIN, SERVFAIL, …), None when it answered
        self.failure: Failure | None = NOT_TRIED
        self._identified: set[str] = set()  # addresses that answered as a reached peer
        self._probing: set[str] = set()
        #: this round's probes still out: the next round waits for them (a round during a sweep
        #: of thousands would only parse the same answer again)
        self._round: set[str] = set()
        #: the last answer was cut short (a Service over ~4,090 pods) and its probes are not all
        #: in yet: then what it left out is to be asked for by name
        self._by_name_pending = False
        #: addresses that did not answer as a peer, and why (for progress lines)
        self.unidentified: dict[str, Failure] = {}
        #: the last telling failure at each of those (``TELLING_CAUSES``): a peer with another
        #: token that left first is then only "refused", which tells the user nothing
        self.telling: dict[str, Failure] = {}

    # --- DNS rounds ---------------------------------------------------------------------------
    def query_due(self, now: float) -> bool:
        if self._querying or self._round or self._next_query is None or self._next_query > now:
            return False
        self._querying, self._next_query, self._last_query = True, None, now
        if self._next_hurried:
            self._hurry_gap = min(2 * self._hurry_gap, self._backoff.cap)
            self._next_hurried = False
        return True

    def pushed(self, address: str, now: float) -> bool:
        """An unreached peer said hello from ``address``: True when it is to be probed now.
        An address DNS does not list yet is not probed (a peer counts as reached only at an
        address DNS gives for the Service); instead the next round comes soon."""
        if address in self.published:
            return self.probe(address, push=True)
        self._hurry = True
        if not self._querying:  # else once the answer is in
            self._bring_forward(now)
        return False

    def answered(
        self, addresses: Iterable[str], now: float, *, truncated: bool = False
    ) -> list[str]:
        """The Service's addresses arrived; returns those to probe now, claimed for probing."""
        self._querying, self.failure = False, None
        if self._once:  # a refresh after every peer was reached: this answer is all it wanted
            self._once = False
            self.published = frozenset(addresses)
            self._next_query = None
            return []
        published = frozenset(addresses)
        # Once the Service answers, rounds go at the normal pace (about one a second), changed
        # answer or not: a peer that arrives says hello to everyone it finds (push), and one not
        # yet in our answer brings the next round forward (``pushed``). Faster rounds while a
        # job's pods arrived polled 3-5 times a second when cluster DNS is busiest.
        self._failures = 0
        self.published = published
        self._schedule(now)
        self._round = {a for a in published if self.probe(a)}
        self._by_name_pending = truncated
        return sorted(self._round)

    def ask_by_name(self) -> bool:
        """True once per cut-short answer, when its probes have landed: the peers still
        unreached may be among those it left out, so they are to be asked for by name."""
        if self._by_name_pending and not self._round:
            self._by_name_pending = False
            return True
        return False

    def failed(self, failure: Failure, now: float) -> None:
        self._querying, self.failure = False, failure
        if self._once:
            self._once, self._next_query = False, None
            return
        self.published = frozenset()
        self._failures += 1
        self._schedule(now)

    def _schedule(self, now: float) -> None:
        # Equal jitter (half to all of the ceiling), not full: still spread, but capped rounds
        # come about once a second rather than twice.
        cap = self._backoff.cap
        ceiling = self._backoff.delay(self._failures + 1, 1.0) if self._failures else cap
        self._next_query = now + ceiling * (0.5 + 0.5 * self._rand())
        self._next_hurried = False
        self._bring_forward(now)

    def _bring_forward(self, now: float) -> None:
        """A peer not in the last answer said hello: look again soon. Soon after a quiet while
        (the last pod of a job is released in milliseconds); but while pods keep arriving, each
        such round waits twice as long as the one before, up to the normal pace, so one round
        confirms many arrivals and cluster DNS is not asked once per arriving pod by every pod."""
        if not self._hurry or self._next_query is None:
            return
        self._hurry = False
        if now - self._last_push > self._quiet:
            self._hurry_gap = self._min_gap
        self._last_push = now
        soon = max(now, self._last_query + self._hurry_gap)
        if soon < self._next_query:
            self._next_query, self._next_hurried = soon, True

    def stop(self) -> None:
        """Every peer is reached: no more rounds."""
        self._next_query = None
        self._once = False

    def refresh(self, now: float) -> None:
        """A contact came from an address the last answer did not list: ask again soon, to
        learn whether it is a pod of the Service published since. Once every peer is reached
        this is one round, at most one a second, however many such contacts come."""
        if self._next_query is not None or self._querying:
            self._hurry = True
            if not self._querying:  # else once the answer is in
                self._bring_forward(now)
            return
        self._next_query = max(now, self._last_query + self._backoff.cap)
        self._once = True

    def resume(self, now: float) -> None:
        """A peer must be reached again (it restarted): rounds start again."""
        if self._next_query is None and not self._querying:
            self._failures, self._next_query = 0, now

    def next_wakeup(self) -> float | None:
        return None if self._round else self._next_query

    # --- probes of single addresses ------------------------------------------------------------
    def probe(self, address: str, *, push: bool = False) -> bool:
        """Claim ``address`` for a probe; False when it needs none. A push (an unreached peer
        said hello from there) probes even an address known for another peer: it was reused."""
        if address in self._probing or (address in self._identified and not push):
            return False
        self._probing.add(address)
        return True

    def forget(self, address: str) -> None:
        """The peer identified at ``address`` restarted: probe the address again, every round
        until it answers (a restarted container keeps its pod's address)."""
        self._identified.discard(address)

    def probed(self, address: str, failure: Failure | None) -> None:
        """The probe of ``address`` landed: it answered as a reached peer (``failure`` None),
        or did not, and why."""
        self._probing.discard(address)
        self._round.discard(address)
        if failure is None:
            self._identified.add(address)
            self.unidentified.pop(address, None)
            self.telling.pop(address, None)
        else:
            self.unidentified[address] = failure
            if failure.cause in TELLING_CAUSES:
                self.telling[address] = failure
