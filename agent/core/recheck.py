"""When what waits to be vouched for is checked again: a timer per claimed index.

A contact or session from an address DNS has not vouched for claims to be some pod. Whatever
the probe kind or the discovery, that claim is checked by asking DNS for the claimed pod's own
name (``Lookup``): ``timing.recheck_first`` after the first thing claiming the index came, then
twice as long after each check, up to ``timing.recheck_cap``. One lookup at a time per index,
however many items claim it. After ``timing.unlisted_warn_after`` (the time a healthy cluster
takes to publish a pod), what only a contact claimed is given up on.

Past a cut Service answer (``agent.core.vouching``) the coordinator checks only the lowest index
claimed: the chain of members' reports vouches for every index from the first one vouched for
round the ring, so the one place it can stop is the lowest member not vouched for (its ring
neighbour has not reached it yet, or has no session that counts). Checking that one name starts
the chain again; checking every member's would cost the coordinator one query a pod, which is
what membership from the coordinator is there to avoid. A claim its name's answer did not vouch
for (an outsider's, or a pod talking from another address than its name gives) is no break
that checking mends: the check moves on to the next index claimed, or the chain would stop
there for good, every pod above it named missing though DNS gives their names right (an
outside review). Still one name at a time; the lowest is checked again once all are refuted.
Nor does a claim still in its wait (``vouch_wait``, for the reports) hold up the checks above it
that are due: its first check comes then, in their place, and if its answer refutes it, the
check passed over is asked at once. It held them for its whole wait before, and a claim that
came after them (an outsider's of a missing pod) had a 10 s timeout name every member above it
missing (outside review 7). A member checks nothing then: what its peers claim is vouched for
by the coordinator's hand-outs. Pure: the caller says when checks start and stop and what each
answered; this says which are due.
"""

from __future__ import annotations

import heapq
import math

from agent.core.causes import DNS_CAUSES, Failure
from agent.core.timing import Timing

__all__ = ["Rechecks"]


class _Check:
    """One index's checks (a plain class: a mutable dataclass cost every start 1.9 million
    instructions to define, for an ``__eq__`` and a ``__repr__`` nobody calls)."""

    __slots__ = ("asked", "asking", "at", "gap", "passed", "refuted", "since")

    def __init__(self, since: float, at: float, gap: float) -> None:
        self.since = since  # when the checks began
        self.at = at  # when the next check is due
        self.gap = gap  # how long after a check the next one comes
        self.asking = False  # a lookup is out
        self.asked = False  # a lookup was ever out
        self.refuted = False  # an answer of the name came back and vouched for none of it
        self.passed = False  # past a cut: due, but not asked: not the chain's break


class Rechecks:
    def __init__(self, timing: Timing) -> None:
        self._first, self._cap = timing.recheck_first, timing.recheck_cap
        self._give_up = timing.unlisted_warn_after
        self._delay = self._first  # before the first check of what begins from now
        self._chain: bool | None = None  # past a cut: True at the coordinator, False at a member
        self._checks: dict[int, _Check] = {}
        self._urgent: set[int] = set()  # asked at once and, past a cut, not only the lowest
        #: past a cut: when an answer refuted a claim, and of which index
        self._moved: tuple[float, int] | None = None
        # (at, index) of every check; an entry whose check has moved on is dropped when it comes
        # up (as Reach's queue), so finding the next one costs O(log n)
        self._queue: list[tuple[float, int]] = []
        #: peers attempted by name that hellos from elsewhere claim: index -> since when
        self._hinted: dict[int, float] = {}

    def start(self, index: int, now: float, *, urgent: bool = False) -> None:
        """Something claiming ``index`` waits: checks begin, unless they have already.
        ``urgent``: the claim contests a session counted (``Coordinator.contested_by``), and a
        release waits for its answer: asked now (again, if checks had begun)."""
        if index not in self._checks:
            self._checks[index] = _Check(now, now + self._delay, self._first)
            heapq.heappush(self._queue, (now + self._delay, index))
        if urgent and index not in self._urgent:
            self._urgent.add(index)
            check = self._checks[index]
            check.at = min(check.at, now)
            heapq.heappush(self._queue, (check.at, index))

    def hint(self, index: int, now: float) -> bool:
        """A hello from an address not vouched for claims ``index``, a peer attempted by name.
        True for the first (its attempt asks at once, as before); the next ones wait for the
        checks, as every claim's (the caller nudges the attempt at each), until the peer is
        reached (``unhint``) or ``unlisted_warn_after`` has passed: nothing else holds such a
        claim. Each hello nudged the attempt before, and the attempt asked the name: an
        outsider's hellos set a group coordinator's rate of lookups (outside review 9)."""
        if index in self._hinted:
            return False
        self._hinted[index] = now
        self.start(index, now)
        return True

    def unhint(self, index: int) -> None:
        """The peer claimed is reached: its hellos' claim holds its checks no more."""
        self._hinted.pop(index, None)

    def unhint_old(self, now: float) -> list[int]:
        """The claims ``hint`` has kept ``unlisted_warn_after``: they keep no checks now."""
        old = [i for i, since in self._hinted.items() if now - since >= self._give_up]
        for index in old:
            del self._hinted[index]
        return old

    def ruled(self, index: int) -> None:
        """DNS answered ``index``'s name (addresses, or that it has none): what was urgent
        about it is settled; its checks go on at their pace."""
        self._urgent.discard(index)

    def patient(self, delay: float, *, coordinator: bool) -> None:
        """Past a cut: checks that begin from now are first due ``delay`` after, not
        ``recheck_first``, and only the coordinator's of its lowest claimed index are asked."""
        self._delay, self._chain = max(self._first, delay), coordinator

    def stop(self, index: int) -> None:
        """Nothing claiming ``index`` waits any more (but the hellos ``hint`` keeps)."""
        if index in self._hinted:
            return
        self._checks.pop(index, None)
        self._urgent.discard(index)

    def take_due(self, now: float) -> list[int]:
        """The indices whose check is due now, each with no lookup out: their lookups start."""
        self._next_break()
        due: list[int] = []
        while (index := self._next()) is not None and self._checks[index].at <= now:
            heapq.heappop(self._queue)
            check = self._checks[index]
            if not check.asking:
                check.asking = True
                due.append(index)
            check.gap = min(2 * check.gap, self._cap)
            check.at = now + check.gap
            heapq.heappush(self._queue, (check.at, index))
        if self._chain is None or not due:
            return due
        lowest = self._break() if self._chain else None
        asked = [index for index in due if index == lowest or index in self._urgent]
        for index in due:
            check = self._checks[index]
            check.asking = index in asked
            check.passed = not check.asking
        if lowest is not None and len(asked) < len(due) and lowest not in due:
            asked += self._in_their_place(lowest, now)
        for index in asked:
            self._checks[index].asked = True
        return asked

    def _break(self) -> int | None:
        """Where the chain stopped: the lowest index claimed that no answer of its name has
        refuted yet, else (every claim refuted: DNS may yet change) the lowest."""
        unrefuted = [index for index, check in self._checks.items() if not check.refuted]
        return min(unrefuted or self._checks, default=None)

    def _in_their_place(self, index: int, now: float) -> list[int]:
        """Checks above the break are due, and the break has not been checked yet (its claim
        came after theirs began: an outsider's claim of a missing pod): its first check is
        now, in their place. Waiting for its own wait to end held theirs up (``vouch_wait``,
        10 s: an outside review's 10 s timeout named every member above it missing); still one
        name a check, and a claim once asked goes on at its own pace (refuted, or DNS failing:
        the break's check is not asked again at every due check above it)."""
        check = self._checks[index]
        if check.asking or check.asked or check.refuted:
            return []
        check.asking = True
        check.gap = min(2 * check.gap, self._cap)
        check.at = now + check.gap
        heapq.heappush(self._queue, (check.at, index))
        return [index]

    def skipped(self, index: int, retry: float | None = None) -> None:
        """The check taken was not asked: the next one, at its time, asks, or at ``retry`` if
        sooner (when the DNS pace has room: a query of the name in flight, an attempt's, may
        well not answer this check, and the two timers must not fall in step for ever)."""
        if (check := self._checks.get(index)) is None:
            return
        check.asking = False
        if retry is not None and retry < check.at:
            check.at = retry
            heapq.heappush(self._queue, (retry, index))

    def answered(self, index: int, now: float, failure: Failure | None = None) -> bool:
        """The lookup of ``index`` came back (``failure``: why it gave no address). Unless
        DNS itself failed, what still claims ``index`` once the answer has vouched is refuted:
        not at an address the name gives. True once the checks have lasted long enough that
        what only a contact claimed (no live session) is given up on."""
        check = self._checks.get(index)
        if check is None:
            return False
        check.asking = False
        refutes = not check.refuted and (failure is None or failure.cause in DNS_CAUSES)
        check.refuted = check.refuted or refutes
        if refutes and self._chain:
            self._moved = (now, index) if self._moved is None else self._moved
        return now - check.since >= self._give_up

    def _next_break(self) -> None:
        """A claim was refuted (and what the answer vouched for has stopped its checks since):
        the break moves up, and is asked now if a check was passed over for it, as promptly
        as were the claim not there, not a doubled gap later."""
        if (moved := self._moved) is None:
            return
        (at, refuted), self._moved = moved, None
        if refuted not in self._checks:  # the answer vouched for what claimed it after all
            return
        if (index := self._break()) is None or index < refuted:  # every claim refuted
            return
        check = self._checks[index]
        # the next break, if a check passed over is its own, or one above it and it was never
        # asked (another claim in its wait: its first check, in that one's place)
        above = not check.asked and any(c.passed for i, c in self._checks.items() if i > index)
        if (check.passed or above) and not check.refuted and at < check.at:
            check.at = at
            heapq.heappush(self._queue, (at, index))

    def next_wakeup(self) -> float:
        self._next_break()
        index = self._next()
        return math.inf if index is None else self._checks[index].at

    def _next(self) -> int | None:
        while self._queue:
            at, index = self._queue[0]
            check = self._checks.get(index)
            if check is not None and check.at == at:
                return index
            heapq.heappop(self._queue)
        return None
