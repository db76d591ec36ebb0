"""When bulk discovery asks cluster DNS for the Service's addresses again: the pace of its rounds.

One query at a time. While the Service does not answer, rounds back off from 0.1 s; once it
answers, about one a second (equal jitter), changed answer or not: a peer that arrives says hello
to everyone it finds, and one not in the last answer brings the next round forward
(:class:`Hurry`). Rounds stop once every peer is reached, but for single refresh rounds that
vouch for a contact from an address the last answer did not list.

A cut-short answer (a Service of more pods than one DNS message holds) lists the same first
addresses round after round, and the peers it leaves out are learnt otherwise
(``agent.core.vouching``): each round after such an answer waits twice as long as the one
before, up to ``Timing.cut_round_cap``, and a hello from an address it did not list brings none
forward (the next cut answer would not list it either). At 10,000 pods each such answer is a
64 KiB TCP message cluster DNS builds for every pod, every round. On a sparse graph, where the
answer only says which addresses are the Service's (the targets are asked by name), every
answer, cut or whole, doubles the wait so, and rounds stop after ``Timing.cut_rounds`` answers
in a row, until a peer must be reached again or a contact comes from an address the last
answer did not list (a refresh): while a pod waited minutes for its targets' agents (a Job
launched over minutes), the doubling rounds were its most queries past its targets' names (9
of 40 at 300 pods in the in-memory cluster; more, the longer the wait), and whole answers (a
Job of 257 to ~4,000 pods) were asked about every 0.75 s for as long as it waited (review 11).

Pure: the caller reports answers and failures with the time; this says when the next round is due.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from agent.core.timing import Timing

__all__ = ["Hurry", "Rounds"]


class Hurry:
    """Rounds brought forward by hellos from addresses the last answer did not list. Soon after
    a quiet while (the last pod of a job is released in milliseconds); but while pods keep
    arriving, each such round waits twice as long as the one before, up to the normal pace, so
    one round confirms many arrivals and cluster DNS is not asked once per arriving pod by
    every pod."""

    def __init__(self, timing: Timing) -> None:
        self._min_gap, self._quiet = timing.round_min_gap, timing.round_quiet
        self._cap = timing.backoff.cap
        self.wanted = False  # a hello asks for a round soon: applied once one is scheduled
        #: how soon after the last round a hello brings the next one: doubles with each round
        #: so brought forward while pods keep arriving, back to the minimum after a quiet while
        self._gap = self._min_gap
        self._last_hello = -math.inf
        self._applied = False  # the round scheduled now was brought forward

    def round_started(self) -> None:
        if self._applied:
            self._gap = min(2 * self._gap, self._cap)
            self._applied = False

    def rescheduled(self) -> None:
        self._applied = False

    def apply(self, now: float, last_round: float, next_round: float) -> float:
        """When the next round is due, brought forward if a hello asks for it."""
        if not self.wanted:
            return next_round
        self.wanted = False
        if now - self._last_hello > self._quiet:
            self._gap = self._min_gap
        self._last_hello = now
        soon = max(now, last_round + self._gap)
        if soon < next_round:
            self._applied = True
            return soon
        return next_round


class Rounds:
    def __init__(
        self,
        *,
        now: float,
        rand: Callable[[], float],
        timing: Timing,
        cut_most: int | None = None,
    ) -> None:
        """``cut_most`` (a sparse graph): every answer doubles the wait, and rounds stop after
        this many answers in a row, until a peer must be reached again (:meth:`resume`); None
        (the complete graph, whose answers are probed): only cut answers double it, and rounds
        go on."""
        self._backoff, self._dns_backoff = timing.backoff, timing.dns_round_backoff
        self._rand = rand
        self._next: float | None = now  # None: no round scheduled
        self._asking = False  # a query is out
        self._last = -math.inf  # when the last round started
        self._failures = 0  # rounds in a row without an answer: those back off from 0.1 s
        self._server_failed = False  # the last of them got no answer from the server
        self._cut = 0  # rounds in a row whose answer was cut short: those back off from 1 s
        self._answers = 0  # rounds in a row with an answer, cut or whole
        self._cut_cap, self._cut_most = timing.cut_round_cap, cut_most
        self._refresh_only = False  # the round due (or out) is a refresh: no more after it
        self._hurry = Hurry(timing)

    def start_due(self, now: float) -> bool:
        """True when a round is due now: it is started (out until answered or failed)."""
        if self._asking or self._next is None or self._next > now:
            return False
        self._asking, self._next, self._last = True, None, now
        self._hurry.round_started()
        return True

    def answered(self, now: float, *, cut: bool = False) -> bool:
        """The round's answer came (``cut``: cut short). True when it was a full round (its
        addresses are to be probed); False when it was a refresh, which is all it wanted."""
        self._asking = False
        self._cut = self._cut + 1 if cut else 0
        self._answers += 1
        if self._refresh_only:
            self._refresh_only, self._next = False, None
            return False
        self._failures, self._server_failed = 0, False
        self._schedule(now)
        return True

    def failed(self, now: float, *, server: bool = False) -> bool:
        """The round got no answer (``server``: the server failed it, a timeout or SERVFAIL,
        not NXDOMAIN). True when it was a full round (what it listed is no longer known);
        False when it was a refresh (nothing more is asked)."""
        self._asking = False
        if self._refresh_only:
            self._refresh_only, self._next = False, None
            return False
        self._failures += 1
        self._answers = 0
        self._server_failed = server
        self._schedule(now)
        return True

    def _schedule(self, now: float) -> None:
        # Equal jitter (half to all of the ceiling), not full: still spread, but capped rounds
        # come about once a second rather than twice.
        cap = self._backoff.cap
        ceiling = self._backoff.delay(self._failures + 1, 1.0) if self._failures else cap
        # answers in a row that double the wait: on a sparse graph all (nothing is probed from
        # them), else the cut ones (they list the same first addresses again)
        doubling = self._cut if self._cut_most is None else self._answers
        if self._cut_most is not None and doubling >= self._cut_most:
            self._next = None  # a contact from an address not listed asks for a refresh
            return
        if doubling:
            ceiling = min(self._cut_cap, cap * 2.0 ** min(doubling - 1, 32))
        if self._server_failed:  # it has fallen behind: asked again within a second, it stays
            ceiling = max(ceiling, self._dns_backoff.ceiling(self._failures))
        self._next = now + ceiling * (0.5 + 0.5 * self._rand())
        self._hurry.rescheduled()
        if not self._server_failed:  # a hello says a peer is up, not that the server is
            self._bring_forward(now)

    def _bring_forward(self, now: float) -> None:
        if self._next is not None:
            self._next = self._hurry.apply(now, self._last, self._next)

    def hurry(self, now: float) -> None:
        """A peer not in the last answer said hello: look again soon (once the answer out, if
        one is, is in). Not past a cut answer: the next would not list it either."""
        if self._cut:
            return
        self._hurry.wanted = True
        if not self._asking:
            self._bring_forward(now)

    def stop(self) -> None:
        """Every peer is reached: no more rounds."""
        self._next = None
        self._refresh_only = False

    def refresh(self, now: float) -> None:
        """A contact came from an address the last answer did not list: ask again soon, to
        learn whether it is a pod of the Service published since. Once every peer is reached
        this is one round, at most one a second, however many such contacts come."""
        if self._next is not None or self._asking:
            self.hurry(now)
            return
        if self._cut and self._cut_most is not None and self._cut >= self._cut_most:
            return  # a cut answer would not list it either
        self._next = max(now, self._last + self._backoff.cap)
        self._refresh_only = True

    def resume(self, now: float) -> None:
        """A peer must be reached again (it restarted): rounds start again, and a refresh due
        or out is a full round (its answer's addresses probed, rounds going on after it)."""
        self._refresh_only = False
        if self._next is None and not self._asking:
            self._failures, self._cut, self._answers, self._next = 0, 0, 0, now

    def next_wakeup(self) -> float | None:
        return self._next
