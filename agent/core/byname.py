"""Discovery by name (``ByName``): every peer's name resolved and probed, for the probes that
cannot tell who answers (icmp, tcp:PORT, dns) and pods with no Service to ask; and how a peer
asked for by name is said to be missing, which discovery by Service shares. Pure."""

from __future__ import annotations

from collections.abc import Sequence

from agent.core.causes import Cause, Failure
from agent.core.effects import Attempt, Effect
from agent.core.inputs import Resolution
from agent.core.lookaround import LookAround
from agent.core.reach import Reach
from agent.core.timing import DEFAULT_TIMING, Timing

__all__ = ["ByName", "by_name_failure", "may_look", "with_earlier"]


def by_name_failure(reach: Reach, index: int) -> Failure:
    """Why a peer asked for by name is not reached: its last failure, and a telling earlier one."""
    peer = reach.peers[index]
    reason = with_earlier(peer.failure, peer.telling)
    return Failure(reason, (peer.telling or peer.failure).cause)


def may_look(reach: Reach, index: int) -> bool:
    """Whether a look-around says hello to member ``index``: a target once at a time
    (``Reach.recheck``). In a tree of coordinators a member need not be a target, and then it
    has no attempt state: each look asks its name once more. Only this hello tells such a
    member of this instance: one whose session is with an older instance of this index (a
    replaced coordinator whose old pod runs on, holding its arrival) leaves it on hearing it
    (``Member.heard_of_coordinator``); nothing else would, and its group never became whole."""
    return not reach.is_target(index) or reach.recheck(index)


def with_earlier(failure: Failure, telling: Failure | None) -> str:
    if telling is None or telling.reason == failure.reason:
        return failure.reason
    return f"{failure.reason}; earlier: {telling.reason}"


class ByName:
    """Every peer by its own name: ``Reach`` attempts each; a coordinator that has reached
    everyone and still waits asks a few of them again, saying hello (``look_around``)."""

    def __init__(self, reach: Reach, timing: Timing = DEFAULT_TIMING) -> None:
        self.reach = reach
        self._look = LookAround(timing)

    def take_due(self, now: float) -> list[Effect]:
        return []

    def next_wakeup(self) -> float | None:
        return None

    def lists(self, address: str) -> bool:
        return False

    def ask_again(self, now: float) -> bool:
        return False

    def heard_from(self, index: int, address: str, now: float) -> list[Effect]:
        self.reach.nudge(index, now)
        return []

    def sighted(self, index: int, address: str, now: float) -> list[Effect]:
        """Its name is attempted once more (it gave the address)."""
        if self.reach.recheck(index):
            return [Attempt(index)]
        self.reach.nudge(index, now)
        return []

    def probed(self, address: str, failure: Failure | None) -> list[Effect]:
        return []

    def restarted(self, address: str, now: float) -> None:
        pass

    def reached_all(self, now: float, *, vouching: bool) -> None:
        self._look.start(now)

    def untie(self, now: float) -> list[int]:
        return []  # each name is its own evidence, asked afresh by every attempt

    def answered(self, resolution: Resolution, now: float) -> list[Effect]:
        return []

    def take_ask_by_name(self) -> list[Effect]:
        return []

    @property
    def cut(self) -> bool:
        return False

    def learn(self, index: int, address: str, now: float) -> list[Effect]:
        return []

    def counts(self, address: str, index: int) -> bool:
        return True

    def look_at(self) -> float:
        return self._look.at

    def look_around(self, now: float, waiting: Sequence[int]) -> list[Effect]:
        """Attempt a few of the members that have not arrived, saying hello whatever the probe
        kind: only a hello carries the released flag (``agent.core.lookaround``)."""
        batch = self._look.take_batch(waiting, now)
        return [Attempt(index, hello=True) for index in batch if may_look(self.reach, index)]

    def why_missing(self, index: int) -> Failure:
        return by_name_failure(self.reach, index)

    def silent_causes(self) -> set[Cause]:
        return set()
