"""A named (or exit) barrier seeded with what this pod's start barrier proved: where each peer it
reached answered, and as which instance.

Every named barrier is one more instance of the barrier, begun when a pod's client asks; found
afresh, it asked cluster DNS for every target's name (and each retry again) while its peers'
clients came over seconds, every pod of the Job at once: at 100 sidecars past a cut answer,
37 queries a pod, DNS timing out for every pod (``docs/benchmarks.md``, real agents at scale).
The start barrier had already tied each of those addresses to its index (by DNS, or by the
token) and met the instance there. So a seeded barrier tries a peer at its proven address
first, asking DNS nothing, and only a seed that fails goes back to DNS:

- the peer answers there as the instance proven: reached (as ever, only the instance asked for
  counts, ``agent.core.answers.NameAttempt``);
- it answers as that pod in a barrier it has not begun yet (``Cause.NOT_BEGUN``): the pod is
  there, its client has not asked yet; tried there again, still without DNS;
- anything else (refused: its agent is gone; another instance, another pod or job; no answer):
  the seed is dropped, and the peer is asked for by name from then on. A pod that restarted
  has a new address, which only DNS can give.

Admission holds as before: a seed is a vouching the start barrier made (an address tied to its
index by DNS or the token), reused while it holds, never made up; a contact from a seeded
address counts for that index only, and no longer once its seed is dropped. Pure.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from agent.core.causes import Cause, Failure
from agent.core.effects import Attempt, Effect
from agent.core.inputs import DialFailed, ProbeResult, Reached, Unreached
from agent.core.reach import Reach
from agent.values import value

__all__ = ["Proof", "Proven", "Seeded", "proven_by"]

#: ``Discovery.learn``: evidence that pod INDEX is at ADDRESS, at NOW; the probes to start
Learn = Callable[[int, str, float], list[Effect]]


@value
class Proven:
    """Where a peer was reached, and which process of it answered there."""

    address: str
    instance: str


#: what a released barrier has proved, read when the next one begins (``proven_by`` of its
#: reach, which goes on hearing hellos while it serves)
Proof = Callable[[], Mapping[int, Proven]]


def proven_by(reach: Reach, heard: Mapping[int, Proven] | None = None) -> dict[int, Proven]:
    """What a released barrier hands the next one: each target reached, with its address and
    instance (none without an instance: a probe that says no hello proves no process), but
    not one whose pod was replaced since (a newer instance heard of: the old one may still
    answer there while it terminates, and it is not the pod any more); and in pod I's start
    barrier with ``--exit-led-by I``, where the others said hello from (``heard``,
    ``agent.core.callers``), for those it did not reach."""
    reached = {
        p.index: Proven(p.address, p.instance)
        for p in reach.peers
        if p.reached and p.address and p.instance and not reach.stale(p.index, p.instance)
    }
    return reached if not heard else {**heard, **reached}


def _nothing(index: int) -> None:
    pass


class Seeded:
    def __init__(
        self,
        proven: Mapping[int, Proven] | None = None,
        dropped: Callable[[int], None] = _nothing,
        *,
        asks: bool = False,
    ) -> None:
        """``dropped``: told of each index whose seed failed (the agent then asks DNS for it,
        not the address that failed: ``RefusedAnswers.forget``). ``asks``: pod I's exit barrier
        (``--exit-led-by I``), which must reach every pod, past a cut answer too: each target
        not seeded, or whose seed fails, is asked for by name (``agent.core.callers``)."""
        self._seeds = dict(proven or {})
        self._dropped = dropped
        #: where each seed is, to drop the one a probe there refutes (``asks`` only)
        self._at = {s.address: i for i, s in self._seeds.items()} if asks else None

    def __len__(self) -> int:
        return len(self._seeds)

    def probes(self, reach: Reach, learn: Learn, now: float) -> list[Effect]:
        """At the start: the seeds of the peers not attempted by name handed to bulk discovery
        (``Discovery.learn``: probed at once, an answer there counting for that index only);
        those attempted by name are tried by ``attempt``."""
        seeds = [(i, s.address) for i, s in self._seeds.items() if not reach.is_scheduled(i)]
        if self._at is not None:
            reach.schedule([p.index for p in reach.missing() if p.index not in self._seeds])
        return [effect for i, address in seeds for effect in learn(i, address, now)]

    def attempt(self, index: int) -> Attempt | None:
        """Peer ``index`` tried at its proven address as its proven instance (no DNS), or None:
        not seeded (any more), DNS is asked."""
        seed = self._seeds.get(index)
        return None if seed is None else Attempt(index, seed.instance, (seed.address,))

    def dial_at(self, index: int) -> tuple[str, ...]:
        """Where to dial coordinator ``index`` without asking DNS (empty: ask)."""
        seed = self._seeds.get(index)
        return () if seed is None else (seed.address,)

    def vouches(self, index: int, address: str) -> bool:
        """Whether the start barrier tied ``address`` to pod ``index``, and it still holds."""
        seed = self._seeds.get(index)
        return seed is not None and seed.address == address

    def attempted(self, index: int, result: ProbeResult) -> bool:
        """A seeded attempt's result: True when the seed failed and is dropped (DNS next)."""
        return not _holds(result) and self._drop(index)

    def replaced(self, index: int) -> None:
        """Pod ``index`` was heard of as a newer instance than its seed's: asked by name."""
        self._drop(index)

    def _drop(self, index: int) -> bool:
        """Pod ``index``'s seed, if it has one, is gone: DNS is asked (True)."""
        if self._seeds.pop(index, None) is None:
            return False
        self._dropped(index)
        return True

    def probed(self, address: str, result: ProbeResult, reach: Reach) -> None:
        """A probe of ``address`` (``asks`` only): a seed there that it refutes is dropped, and
        that pod asked for by name (it may have been replaced elsewhere: only DNS knows)."""
        index = None if self._at is None else self._at.get(address)
        if index is None or index not in self._seeds:
            return
        said = (result.index, result.instance) if isinstance(result, Reached) else None
        if said not in (None, (index, self._seeds[index].instance)):
            result = Unreached(_REFUTED)  # another pod or process answers there
        if self.attempted(index, result):
            reach.schedule([index])

    def dial_failed(self, index: int, failed: DialFailed) -> bool:
        """The dial of coordinator ``index`` failed: its seed is dropped (True) unless the pod
        said it has not begun the barrier yet."""
        return not failed.not_begun and self._drop(index)


#: a seeded address where another pod or process answers
_REFUTED = Failure("another pod or process answers at its address", Cause.OTHER_INSTANCE)


def _holds(result: ProbeResult) -> bool:
    """The seed still leads to the pod: it answered there, or said it has not begun yet."""
    if isinstance(result, Reached):
        return True
    return isinstance(result, Unreached) and result.failure.cause is Cause.NOT_BEGUN
