"""The DNS pace (``agent.core.dnspace``) applied to what the agent asks, and said when it matters.

Every by-name query the agent would send passes :meth:`Asking.gate`: an attempt that must ask
DNS (not one that reuses addresses that refused a moment ago: no query), a re-check of a
reached peer, an admission check (``Lookup``), a member's dial of its coordinator (index 0).
What the pace does not allow now is put back: the attempt is due again when the pace allows it
(``Reach.defer``), the dial likewise (``Member.hold_dial``), the admission check until the
pace has room (``Rechecks.skipped``). An admission check of a peer that is being attempted by
name is not asked at all: the attempt asks the same question, and its answer vouches once it
reaches the peer (a re-check's answer too). Every answer is
reported back (:meth:`attempted`, :meth:`looked_up`, :meth:`dialled`, :meth:`swept`), and a
name the server failed is held back.

While a share of the queries gets no answer, the progress lines say so: DNS, not the peers, is
what the agent waits for. Said at info level at first (a burst of timeouts while a Job starts
is normal), as a warning once it has lasted ``Timing.dns_slow_warn_after``; and a timeout's
message gives it as a hint. Pure.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from agent.core.admission import Admission
from agent.core.causes import Cause, Failure
from agent.core.dnspace import DnsPace, Slowness
from agent.core.effects import Attempt, Dial, Effect, Lookup
from agent.core.group import GroupCoordinator
from agent.core.inputs import (
    Contacted,
    DialFailed,
    Input,
    LookedUp,
    Opened,
    ProbeResult,
    Resolution,
    Unreached,
)
from agent.core.log import LogKind, LogLevel, LogLine
from agent.core.reach import Reach
from agent.core.refused import RefusedAnswers
from agent.core.roles import Coordinator, Member
from agent.core.timing import Timing

__all__ = ["Asking", "dns_hint", "service_hint"]


def _server_failed(failure: Failure | None) -> bool:
    """The server did not answer (a timeout, SERVFAIL, REFUSED): NXDOMAIN is an answer."""
    return failure is not None and failure.cause is Cause.DNS_FAILED


def _negative(failure: Failure | None) -> bool:
    """The server answered that the name has no address (yet)."""
    return failure is not None and failure.cause in (Cause.NXDOMAIN, Cause.NO_ADDRESS)


class Asking:
    def __init__(
        self,
        pace: DnsPace,
        reach: Reach,
        admission: Admission,
        timing: Timing,
        refusing: RefusedAnswers,
    ) -> None:
        self.pace, self._reach, self._admission, self._timing = pace, reach, admission, timing
        self._refusing = refusing  # what refused is tried again without DNS: a hello ends it
        self._by_attempt: set[int] = set()  # attempts out that asked DNS
        self._dialling = False  # a dial that asked DNS is out
        self._slow_since: float | None = None
        #: the last window judged slow (None: DNS was well at the last look)
        self.slow: Slowness | None = None
        #: why the last query of the Service's own name got no answer from DNS (None: it did);
        #: the pods' names may answer all the while, so ``slow`` need not see it
        self.service_failed: Failure | None = None

    def start_attempts(self, now: float, attempt: Callable[[int, float], Attempt]) -> list[Attempt]:
        """The attempts due now, as many as the pace has queries for. One that reuses addresses
        that refused a moment ago asks no DNS and takes none: stopping at the pace's count left
        a due attempt and a query unused, and the agent asked to be woken in the past."""
        out: list[Attempt] = []
        queries = self.pace.available(now)
        while queries > 0 and (started := self._reach.start_due(now, queries)):
            made = [attempt(index, now) for index in started]
            queries -= sum(1 for a in made if not a.addresses)
            out += made
        return out

    def next_wakeup(self, due: float | None) -> float | None:
        """When an attempt due at ``due`` may start: once the pace has a query for it."""
        return None if due is None else max(due, self.pace.next_token_at())

    def gate(
        self, effects: list[Effect], now: float, side: Coordinator | Member | None
    ) -> list[Effect]:
        """``effects`` but the queries the pace does not allow now, which are put back
        (``side``: this pod's side of the barrier, whose dial may be put back)."""
        out: list[Effect] = []
        for effect in effects:
            if isinstance(effect, Attempt) and effect.hello and not effect.addresses:
                effect = self._looking(effect, now)
            if isinstance(effect, Attempt) and not effect.addresses:
                if (at := self.pace.ask(effect.index, now)) is not None:
                    self._reach.defer(effect.index, at)
                    continue
                self._by_attempt.add(effect.index)
            elif isinstance(effect, Lookup) and self._by_name(effect.index, side):
                self._claimed(effect.index)
                self._admission.skipped(effect.index)
                continue
            elif (
                isinstance(effect, Lookup) and (at := self.pace.ask(effect.index, now)) is not None
            ):
                self._admission.skipped(effect.index, at)  # asked once the pace has room
                continue
            elif isinstance(effect, Dial) and not effect.addresses and (up := _dialler(side)):
                if (at := self.pace.ask(effect.index, now)) is not None:
                    up.hold_dial(at)  # an attempt of that name is out: its answer is reused
                    continue
                self._dialling = True
            out.append(effect)
        return out

    def _looking(self, attempt: Attempt, now: float) -> Attempt:
        """A look-around's hello to a member whose addresses refused (its agent not up yet) goes
        there again without asking DNS, as an attempt would (``RefusedAnswers``): each look
        asked every such member's name, a coordinator's most queries while its members came
        minutes late."""
        return Attempt(
            attempt.index,
            attempt.instance,
            self._refusing.addresses(attempt.index, now),
            hello=True,
        )

    def _by_name(self, index: int, side: Coordinator | Member | None) -> bool:
        """Whether peer ``index`` is being attempted by name: its attempt asks for its name
        anyway, and once it reaches the peer, vouches for what claims it from there, so an
        admission check of it would only ask DNS the same question again. No attempt starts
        after the verdict: a coordinator that aborted with a member's session held (not
        vouched for yet) would never hand it the abort, and the member waited for its timeout
        (exit 3, not 4)."""
        if side is not None and side.verdict is not None:
            return False
        return self._reach.is_scheduled(index) and not self._reach.peers[index].reached

    def heard(self, event: Input, now: float, side: Coordinator | Member | None) -> None:
        """What an event says of a query this pod asked: an admission check's answer, a
        member's dial that failed or opened."""
        if isinstance(event, Contacted):
            self._hello(event, now)
        elif isinstance(event, LookedUp):
            self.looked_up(event.index, event.resolution, now)
            self._refusing.relisted(event.index, event.resolution.addresses)
        elif isinstance(event, DialFailed):
            self.dialled(now, failed=event.server_failed, side=side)
        elif isinstance(event, Opened) and event.dialled:
            self.dialled(now, failed=False, side=side)

    def _hello(self, event: Contacted, now: float) -> None:
        """A peer's hello says it is up: the hold of a name DNS said had no address ends, and
        the reuse of addresses that refused (``RefusedAnswers.heard``). A hello from where no
        DNS answer leads only claims so: for a peer attempted by name, its check nudges the
        attempt at the pace of every claim (``Admission.hint``), not each hello (an outsider's
        hellos set the rate of a group coordinator's lookups: outside review 9)."""
        index, address = event.hello.identity.index, event.address
        evidence = self._admission.verified(index, address) or self._refusing.gave(index, address)
        if event.listed or evidence:
            self.pace.hurry(index)
            self._refusing.heard(index, address)
            # and now, there (no query): past a cut answer such a hello is not vouched for,
            # and nothing else retries the peer before its refused backoff (up to 30 s)
            self._reach.nudge(index, now)
        elif self._hinted(index, now):  # the first claim: asked at once, as before
            self._claimed(index)
            self._reach.nudge(index, now)

    def _hinted(self, index: int, now: float) -> bool:
        return self._reach.awaits_name(index) and self._admission.hint(index, now)

    def _claimed(self, index: int) -> None:
        """A claim of a peer attempted by name is checked: its next attempt asks DNS, as the
        claim's hello would have had it (the first hello's at once; a check's at the
        attempt's own time, never an instant a poll has passed)."""
        self.pace.hurry(index)
        self._refusing.forget(index)

    def dialled(self, now: float, *, failed: bool, side: Coordinator | Member | None) -> None:
        """A member's dial landed (``failed``: DNS gave no answer for the coordinator's name);
        a dial after a failure waits for the name's hold."""
        if not self._dialling:
            return
        self._dialling = False
        up = _dialler(side)
        parent = up.parent if up is not None else 0
        self.pace.landed(parent, now, failed=failed)
        if failed and up is not None:
            up.hold_dial(self.pace.held(parent))

    def attempted(
        self, index: int, result: ProbeResult, now: float, *, late: bool = False
    ) -> float:
        """An attempt of ``index`` landed (``late``: its name's answer came late): not before
        the time returned is its name asked again (-inf: as the attempt's own backoff says)."""
        if index not in self._by_attempt:
            return -math.inf  # it asked no DNS
        self._by_attempt.discard(index)
        failure = result.failure if isinstance(result, Unreached) else None
        failed, negative = _server_failed(failure), _negative(failure)
        self.pace.landed(index, now, failed=failed, negative=negative, late=late)
        return self.pace.held(index)

    def looked_up(self, index: int, resolution: Resolution, now: float) -> None:
        failure, late = resolution.failure, resolution.late
        failed, negative = _server_failed(failure), _negative(failure)
        self.pace.landed(index, now, failed=failed, negative=negative, late=late)

    def swept(self, resolution: Resolution, now: float) -> None:
        failed = _server_failed(resolution.failure)
        self.pace.observed(now, failed=failed or resolution.late)
        self.service_failed = resolution.failure if failed else None

    def slow_lines(self, now: float) -> list[LogLine]:
        """With a progress line: whether DNS is what the agent waits for, while it is."""
        seen, t = self.pace.slowness(now), self._timing
        if seen.failed < t.dns_slow_least or seen.share < t.dns_slow_share:
            self.slow, self._slow_since = None, None
            return self._service_line()
        self.slow = seen
        if self._slow_since is None:
            self._slow_since = now
        lasting = now - self._slow_since >= t.dns_slow_warn_after
        level = LogLevel.WARNING if lasting else LogLevel.INFO
        fields = {
            "failed": seen.failed,
            "asked": seen.asked,
            "window": seen.window,
            "rate": round(seen.rate, 1),
            "since": round(now - self._slow_since, 1),
        }
        return [LogLine(LogKind.DNS_SLOW, f"DNS is slow: {_said(seen)}", fields, level=level)]

    def _service_line(self) -> list[LogLine]:
        """The Service's own name failing is DNS holding the barrier even where the pods' names
        answer, so too few failures to make the window slow (review10: no line said DNS)."""
        if self.service_failed is None:
            return []
        why = self.service_failed.reason
        line = f"DNS is slow: the Service's name got no answer at its last query ({why})"
        return [LogLine(LogKind.DNS_SLOW, line, {"service_failed": why})]


def _dialler(side: Coordinator | Member | None) -> Member | None:
    """What dials this pod's coordinator by name: a member, or a group coordinator's uplink to
    the root. The uplink's dial was not paced: it went out with the attempt of the root's name
    (a target) at the same instant, two queries for one name in flight at once (issue 22: the
    root's name asked twice by every group coordinator at 100,000 pods)."""
    if isinstance(side, GroupCoordinator):
        return side.up
    return side if isinstance(side, Member) else None


def _said(seen: Slowness) -> str:
    return (
        f"{seen.failed} of {seen.asked} queries in the last {seen.window:g} s got no answer "
        f"in time (DNS timeout, SERVFAIL, a late answer) ({seen.share:.0%}); pacing queries "
        f"by name to "
        f"{seen.rate:.2g}/s"
    )


def dns_hint(slow: Slowness | None) -> list[str]:
    """The timeout's hint when DNS was slow at the last look: it, not the peers, held the
    barrier up."""
    if slow is None:
        return []
    return [
        f"cluster DNS, not the peers, is the bottleneck: {_said(slow)}; check CoreDNS's load "
        "and replicas (kubectl -n kube-system top pods -l k8s-app=kube-dns), or add "
        "NodeLocal DNSCache"
    ]


def service_hint(failed: Failure | None, service: str) -> list[str]:
    """The timeout's hint when the last query of the Service's own name failed: a member counts
    its coordinator only from an address an answer of it lists, so DNS holds the barrier even
    where every pod's own name answers (review10: pod 0's report said nothing of DNS)."""
    if failed is None:
        return []
    return [
        f"cluster DNS gives no answer for the Service's name {service} ({failed.reason}), "
        "though it may answer the pods' names: the pods count each other only from addresses "
        "its answer lists; check the CoreDNS pods' logs and that the headless Service exists"
    ]
