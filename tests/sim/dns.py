"""Cluster DNS as each pod's resolver sees it: one view per pod (cluster.py, tasks.py).

CoreDNS runs as several replicas, each watching the API on its own: a pod whose resolver is a
replica behind the others sees every change later, a new pod's record and a deleted pod's
withdrawal alike (a stale address lingers there). And the headless Service's own name and a
pod's own name are two records: one can list a new pod before the other. A :class:`View` says
how far behind one pod's resolver is, and how much later each of the two names lists a pod
than its publication.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from agent.core.causes import Cause, Failure
from agent.core.inputs import Resolution

if TYPE_CHECKING:
    from tests.sim.node import Pod

__all__ = ["View", "cut", "resolution"]


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

    def service(self, pods: Iterable[Pod], now: float) -> list[Pod]:
        """The pods the headless Service's own name lists."""
        return [p for p in pods if not p.outsider and self._lists(p, self.service_after, now)]


def resolution(pods: list[Pod]) -> Resolution:
    """What DNS answers for a name that lists ``pods``."""
    if not pods:
        return Resolution(failure=Failure("NXDOMAIN", Cause.NXDOMAIN))
    return Resolution(tuple(p.address for p in pods))


def cut(answer: Resolution, at: int | None) -> Resolution:
    """The Service's answer as a Service of more pods than one DNS message holds gets it: its
    first ``at`` addresses, marked truncated (None: whole)."""
    if at is None or len(answer.addresses) <= at:
        return answer
    return Resolution(answer.addresses[:at], truncated=True)
