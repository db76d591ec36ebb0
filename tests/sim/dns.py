"""Cluster DNS as each pod's resolver sees it: one view per pod (cluster.py, tasks.py).

CoreDNS runs as several replicas, each watching the API on its own: a pod whose resolver is a
replica behind the others sees every change later, a new pod's record and a deleted pod's
withdrawal alike (a stale address lingers there). And the headless Service's own name and a
pod's own name are two records: one can list a new pod before the other. A :class:`View` says
how far behind one pod's resolver is, and how much later each of the two names lists a pod
than its publication.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from agent.core.causes import Cause, Failure
from agent.core.inputs import Resolution

if TYPE_CHECKING:
    from tests.sim.node import Pod

__all__ = ["ANSWER_HOLDS", "TIMED_OUT", "Server", "ServiceAnswers", "View", "cut", "resolution"]

#: the addresses one DNS answer holds even over TCP (64 KiB, FIELD-NOTES): a Service of more
#: pods answers cut short, as ``agent.io.resolver`` reports it (``Resolution.truncated``)
ANSWER_HOLDS = 4091


@dataclass(frozen=True)
class View:
    #: this pod's replica applies every change (publication, withdrawal) this much later
    lag: float = 0.0
    #: a pod's own name lists it this much after its publication
    name_after: float = 0.0
    #: the Service's name lists it this much after its publication
    service_after: float = 0.0
    #: (index, seconds): that one pod's name lists it this much later still, in this view only
    #: (a lookup that keeps failing at one pod while the others' answer)
    late: tuple[tuple[int, float], ...] = ()

    def _lists(self, pod: Pod, after: float, now: float) -> bool:
        return pod.published_at + self.lag + after <= now < pod.withdrawn_at + self.lag

    def name(self, pods: Iterable[Pod], index: int, now: float) -> list[Pod]:
        """The pods peer ``index``'s name lists (never an outsider's)."""
        after = self.name_after + dict(self.late).get(index, 0.0)
        return [
            p for p in pods if p.index == index and not p.outsider and self._lists(p, after, now)
        ]

    def service(
        self, pods: Iterable[Pod], now: float, holds: int = ANSWER_HOLDS
    ) -> tuple[list[Pod], bool, float]:
        """The pods the headless Service's own name lists, the first ``holds`` of them in the
        order ``pods`` come; whether there were more (the answer is cut short); and until when
        that stays the answer (the first change among the pods it looked at)."""
        listed: list[Pod] = []
        until = math.inf
        for p in pods:
            shows, hides = p.published_at + self.lag + self.service_after, p.withdrawn_at + self.lag
            if p.outsider or now >= hides:
                continue
            if now < shows:
                until = min(until, shows)
                continue
            listed.append(p)
            until = min(until, hides)
            if len(listed) > holds:
                return listed[:holds], True, until
        return listed, False, until


def resolution(pods: list[Pod], truncated: bool = False) -> Resolution:
    """What DNS answers for a name that lists ``pods`` (``truncated``: and more it left out)."""
    if not pods:
        return Resolution(failure=Failure("NXDOMAIN", Cause.NXDOMAIN))
    return Resolution(tuple([p.address for p in pods]), truncated)


#: a kept Service answer: the pods it read, how many, whether it read to their end, the answer,
#: until when it stays right, the pods it lists (in order, and as a set)
_Kept = tuple[list["Pod"], int, bool, Resolution, float, list["Pod"], set["Pod"]]


class ServiceAnswers:
    """The headless Service's answers. Past what one answer holds, each lists the first
    ``ANSWER_HOLDS`` pods from one of ``ROTATIONS`` points, ``ANSWER_HOLDS`` apart (CoreDNS's
    ``loadbalance`` rotates the records, so an answer cut short lists another part of the Job
    each time). Each is kept until a pod it looked at changes, or, if it read to the end of the
    pods, another starts: a Job of 100,000 costs the simulator a few thousand pods per
    change, not per answer."""

    ROTATIONS = 8

    def __init__(self) -> None:
        self._answers = 0
        #: (view, start) -> the pods it read, how many, whether it read to their end, the
        #: answer, until when, the pods it lists (in order, and as a set)
        self._kept: dict[tuple[View, int], _Kept] = {}

    def answer(self, view: View, pods: list[Pod], now: float) -> Resolution:
        n, start = len(pods), 0
        # One answer lists them all, in start order, until one of them changes: kept as a cut
        # answer is (read afresh, every sweep of N pods read all N: N² in all). The rotation
        # counts only cut answers, as before.
        if n > ANSWER_HOLDS:
            self._answers += 1
            start = self._answers % self.ROTATIONS * ANSWER_HOLDS
            start = start if start < n else 0
        kept = self._kept.get((view, start))
        if kept is not None and kept[0] is pods and now < kept[4]:
            if kept[1] == n or not kept[2]:
                return kept[3]
            if start == 0:  # pods started since it read them all: only they are read now
                return self._extended(view, kept, now)
        read = [start]

        def order() -> Iterator[Pod]:
            for i in itertools.chain(range(start, n), range(start)):
                read[0] = i
                yield pods[i]

        listed, truncated, until = view.service(order(), now)
        to_end = not truncated or read[0] < start
        answer = resolution(listed, truncated)
        self._kept[(view, start)] = (pods, n, to_end, answer, until, listed, set(listed))
        return answer

    def _extended(self, view: View, kept: _Kept, now: float) -> Resolution:
        """A whole answer from the first pod, still right for the pods it read (``now`` is
        before its ``until``), and the pods started since: what reading them all would give,
        for the cost of the new ones (as the Job's pods start one by one, each start's sweep
        read every pod before it: N² in all)."""
        pods, n = kept[0], len(kept[0])
        more, truncated, until = view.service(pods[kept[1] :], now, ANSWER_HOLDS - len(kept[5]))
        listed, members = kept[5] + more, kept[6]
        members.update(more)  # the kept answer it extends is replaced: its set is reused
        answer = resolution(listed, truncated)
        until = min(kept[4], until)
        self._kept[(view, 0)] = (pods, n, not truncated, answer, until, listed, members)
        return answer

    def withdrawn(self, pod: Pod | None = None) -> None:
        """``pod``'s withdrawal was set or moved earlier (None: any pod's, as the tests set
        it): an answer kept that lists it is right only until its replica hides it; one that
        does not list it stays right (not shown yet, its ``until`` says so already; hidden, it
        stays hidden). So a Job's pods leaving one by one leave most kept answers be."""
        if pod is None:
            self._kept.clear()
            return
        for (view, start), kept in list(self._kept.items()):
            if pod in kept[6]:
                until = min(kept[4], pod.withdrawn_at + view.lag)
                self._kept[(view, start)] = (*kept[:4], until, *kept[5:])


def cut(answer: Resolution, at: int | None) -> Resolution:
    """The Service's answer as a Service of more pods than one DNS message holds gets it: its
    first ``at`` addresses, marked truncated (None: whole)."""
    if at is None or len(answer.addresses) <= at:
        return answer
    return Resolution(answer.addresses[:at], truncated=True)


#: what a pod's resolver reports for a query the server never answered in time
TIMED_OUT = Resolution(failure=Failure("DNS timeout", Cause.DNS_FAILED))


class Server:
    """Cluster DNS that can fall behind: until ``until`` it answers ``rate`` queries a second,
    in order (a CPU-bound server: CoreDNS on its cores, or the bench's one-thread stub starved
    by the agents beside it), and drops what arrives while ``queue`` are waiting (a full
    receive buffer); a query answered later than the resolver's timeout is answered all the
    same (it costs the server as much) but too late. Either way the pod sees a timeout, the
    only sign of an overloaded server it gets. ``timeout``: how long the resolver waits
    (``Timing.dns_answer_wait``); an answer later than ``Timing.dns_timeout`` but within it is
    used, marked late (``tests.sim.tasks``). From ``until`` on it keeps up."""

    def __init__(self, rate: float, queue: int, timeout: float, until: float) -> None:
        self.rate, self.queue, self.timeout, self.until = rate, queue, timeout, until
        self._free = 0.0  # when the server has answered every query it took
        self.dropped = 0  # never read
        self.late = 0  # answered after the resolver gave up
        self.asked: Counter[int] = Counter()  # queries sent while it is behind, by pod index

    def wait(self, now: float, index: int) -> float | None:
        """How long a query pod ``index`` sends ``now`` waits for its answer; None: it times
        out."""
        if now >= self.until:
            return 0.0
        self.asked[index] += 1
        start = max(now, self._free)
        if (start - now) * self.rate >= self.queue:
            self.dropped += 1
            return None
        self._free = start + 1.0 / self.rate
        if self._free - now > self.timeout:
            self.late += 1
            return None
        return self._free - now
