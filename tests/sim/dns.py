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
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from agent.core.causes import Cause, Failure
from agent.core.inputs import Resolution

if TYPE_CHECKING:
    from tests.sim.node import Pod

__all__ = ["ANSWER_HOLDS", "View", "resolution", "rotated"]

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

    def _lists(self, pod: Pod, after: float, now: float) -> bool:
        return pod.published_at + self.lag + after <= now < pod.withdrawn_at + self.lag

    def name(self, pods: Iterable[Pod], index: int, now: float) -> list[Pod]:
        """The pods peer ``index``'s name lists (never an outsider's)."""
        return [
            p
            for p in pods
            if p.index == index and not p.outsider and self._lists(p, self.name_after, now)
        ]

    def service(self, pods: Iterable[Pod], now: float) -> tuple[list[Pod], bool]:
        """The pods the headless Service's own name lists, the first ``ANSWER_HOLDS`` of them
        in the order ``pods`` come, and whether there were more (the answer is cut short)."""
        listed = (p for p in pods if not p.outsider and self._lists(p, self.service_after, now))
        answer = list(itertools.islice(listed, ANSWER_HOLDS + 1))
        return answer[:ANSWER_HOLDS], len(answer) > ANSWER_HOLDS


def resolution(pods: list[Pod], truncated: bool = False) -> Resolution:
    """What DNS answers for a name that lists ``pods`` (``truncated``: and more it left out)."""
    if not pods:
        return Resolution(failure=Failure("NXDOMAIN", Cause.NXDOMAIN))
    return Resolution(tuple(p.address for p in pods), truncated=truncated)


def rotated(pods: list[Pod], answer: int) -> Iterator[Pod]:
    """Every pod in the order the Service's ``answer``-th answer lists them: in start order
    while one answer holds them all; past that from a point that moves with each answer
    (CoreDNS's ``loadbalance`` rotates the records, so an answer cut short lists another part
    of the Job each time), made as it is read: an answer cut at a few thousand costs that, not
    the Job's size."""
    n = len(pods)
    if n <= ANSWER_HOLDS:
        return iter(pods)
    start = answer * 7919 % n
    return map(pods.__getitem__, itertools.chain(range(start, n), range(start)))
