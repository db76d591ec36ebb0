"""How fast this pod may ask cluster DNS for names: a token bucket, one query a name, backoff.

Every pod of a Job starts at once, and at scale each asks for many names (all of them with a
probe that cannot tell who answers, those a cut-short Service answer left out otherwise). One
CoreDNS instance answers about 33,700 queries a second on 2 vCPU, CPU-bound; a server pushed past
that drops or times out queries, and pods that ask again at once push it into collapse. So:

- a **token bucket** per pod, a second's worth at its rate in a burst; the rate **starts**
  at the pod's share of ``Timing.dns_start_job_rate`` (``/ N``, within ``dns_rate_min`` and
  ``dns_rate_max``: the Job's pods start together), **grows** by one a second with each answer
  (so it doubles about every second while the server keeps up), up to ``dns_rate_max``, and
  **halves** with each query the server fails (a timeout is the server's overload, not an
  answer), down to ``dns_rate_floor`` (one query in 16 s), and the next query then waits half
  to all of a query's time at the new rate (jitter: the pods that failed together do not ask
  again together): as TCP shares a link, the pods share the server by what it answers, and
  one that falls behind is asked less, not more. A pod that alone asks many names (a
  coordinator) gets there within seconds. The floor was ``dns_rate_min`` (2 a second), once
  per ``dns_timeout``: well above the share of a server that has fallen behind, so 300 pods
  asked each name again every 4-8 s (the per-name backoff alone) while the server answered
  none of it in time, 75-695 queries a pod (``bench.cutanswer 300``);
- **one query in flight per name**, whoever asks it (an attempt, an admission check); and a
  query waits ``Timing.dns_answer_wait`` for its answer, not ``dns_timeout``: an answer later
  than that is the server falling behind (the rate halves) and is used all the same. Thrown
  away, it cost the name another query, which a server that falls behind answers as late: a
  timeout then asked every name twice or more (up to 43 queries a pod of 300 real agents);
- **backoff per name** after the server failed to answer it (a timeout, SERVFAIL, REFUSED):
  exponential with equal jitter (``Timing.dns_backoff``), so a name the server cannot answer is
  asked a bounded number of times however often its peer says hello; an address ends it;
- a gentler backoff after a negative answer (NXDOMAIN, no address: ``dns_negative_backoff``,
  up to 2-4 s): cluster DNS caches those 5-30 s, so asking every second mostly hears the cached
  answer again; a hello from that pod (it is up) lets its name be asked again at once;

It also keeps the last ``Timing.dns_slow_window`` seconds of outcomes (longer while the pace is
slow: enough for ``dns_slow_least`` queries), so the agent can say
when DNS, not the peers, is what it waits for (:meth:`DnsPace.slowness`).

Names are peer indices; a Service round (one query at a time, paced by ``Rounds``) is only
counted in the window. Pure: the caller says what it asks and what came back, with the time.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable

from agent.core.timing import Timing
from agent.values import value

__all__ = ["DnsPace", "Slowness", "start_rate"]

_EPSILON = 1e-6  # of a query: the bucket's arithmetic is in floats


def start_rate(timing: Timing, peers: int) -> float:
    """This pod's share of the Job's starting rate: the Job's pods start at once."""
    share = timing.dns_start_job_rate / max(peers, 1)
    return min(timing.dns_rate_max, max(timing.dns_rate_min, share))


@value
class Slowness:
    """The last window's queries: how many got no answer from the server, and the pace now."""

    failed: int
    asked: int
    window: float
    rate: float

    @property
    def share(self) -> float:
        return self.failed / self.asked if self.asked else 0.0


class DnsPace:
    def __init__(
        self, timing: Timing, *, peers: int, now: float, rand: Callable[[], float]
    ) -> None:
        self._timing, self._rand = timing, rand
        self.rate = start_rate(timing, peers)
        self._tokens, self._filled_at = self.rate, now  # a second's worth
        self._asking: set[int] = set()
        self._failures: dict[int, int] = {}  # names the server failed, how many times in a row
        self._hold: dict[int, float] = {}  # name -> not asked again before this
        self._negative: dict[int, int] = {}  # names answered "no address", how many in a row
        self._window: deque[tuple[float, bool]] = deque()  # (when, the server failed it)
        #: queries handed out, in all (a figure for the release line)
        self.asked = 0

    # --- the bucket ---------------------------------------------------------------------------
    def _fill(self, now: float) -> None:
        if now > self._filled_at:
            # a second's worth, but at least one query: below 1 a second, one fills in time
            most = max(self.rate, 1.0)
            self._tokens = min(most, self._tokens + (now - self._filled_at) * self.rate)
            self._filled_at = now

    def available(self, now: float) -> int:
        """Whole queries the bucket allows now."""
        self._fill(now)
        return int(self._tokens + _EPSILON)

    def next_token_at(self) -> float:
        """When the bucket next holds a whole query (now or earlier: it does). Within
        ``_EPSILON`` of a whole one counts as one: a time a rounding error after ``now`` would
        be ``now`` again, and the caller would wake for ever without a query to send."""
        if self._tokens + _EPSILON >= 1:
            return -math.inf
        return self._filled_at + (1 - self._tokens) / self.rate

    # --- names --------------------------------------------------------------------------------
    def ask(self, name: int, now: float) -> float | None:
        """Ask for ``name`` now: None when it may (a query is taken from the bucket and the
        name is out until :meth:`landed`), else the time to try again."""
        if name in self._asking:  # another asker's query (an attempt, a check, a dial) is out:
            return now + self._timing.dns_in_flight_poll  # its answer soon serves this one too
        if (hold := self._hold.get(name, -math.inf)) > now:
            return hold
        self._fill(now)
        if self._tokens + _EPSILON < 1:
            return self.next_token_at()
        self._tokens -= 1
        self._asking.add(name)
        self.asked += 1
        return None

    def held(self, name: int) -> float:
        """Not before this is ``name`` asked again (-inf: whenever)."""
        return self._hold.get(name, -math.inf)

    def landed(
        self, name: int, now: float, *, failed: bool, negative: bool = False, late: bool = False
    ) -> None:
        """The query for ``name`` came back: answered, or ``failed`` by the server;
        ``negative``: the answer was that the name has no address (yet); ``late``: answered
        after ``Timing.dns_timeout``, which slows the pace as a failure does (the server has
        fallen behind) but is an answer: the name is not held back."""
        self._asking.discard(name)
        self.observed(now, failed=failed or late)
        if not failed and not negative:
            self._failures.pop(name, None)
            self._hold.pop(name, None)
            self._negative.pop(name, None)
            return
        if negative:  # cluster DNS caches it 5-30 s: asking sooner mostly hears it again
            self._failures.pop(name, None)  # the server answered: it is well
            count = self._negative[name] = self._negative.get(name, 0) + 1
            backoff = self._timing.dns_negative_backoff
        else:
            count = self._failures[name] = self._failures.get(name, 0) + 1
            backoff = self._timing.dns_backoff
        self._hold[name] = now + backoff.equal_jitter(count, self._rand())

    def hurry(self, name: int) -> None:
        """The pod of ``name`` said hello: it is up, so a name held for a negative answer (not
        one the server failed) may be asked again at once."""
        if name in self._negative and name not in self._failures:
            self._hold.pop(name, None)

    def observed(self, now: float, *, failed: bool) -> None:
        """A query's outcome (any query: a Service round too), for the window and the rate."""
        self._window.append((now, failed))
        self._trim(now)
        self._fill(now)
        if not failed:  # below 1 a second (the server failed it lately), twice the rate
            self.rate = min(self._timing.dns_rate_max, self.rate + min(self.rate, 1.0))
            return
        # every failure, not one per timeout: queries that time out together are as many
        # queries the server could not take, and each one asked again costs it another
        self.rate = max(self._timing.dns_rate_floor, self.rate / 2)
        self._tokens = min(self._tokens, 0.5 * (1.0 - self._rand()))

    def _span(self) -> float:
        """The window looked at: ``dns_slow_window``, or long enough for ``dns_slow_least``
        queries at the pace now. A pace slowed to its floor by timeouts asks one query in
        8-16 s: in 10 s the window held too few to call DNS slow, and the agent stopped saying
        that DNS, not the peers, held it up while it did most."""
        return max(self._timing.dns_slow_window, self._timing.dns_slow_least / self.rate)

    def _trim(self, now: float) -> None:
        start = now - self._span()
        while self._window and self._window[0][0] < start:
            self._window.popleft()

    def slowness(self, now: float) -> Slowness:
        self._trim(now)
        failed = sum(f for _, f in self._window)
        return Slowness(failed, len(self._window), self._span(), self.rate)
