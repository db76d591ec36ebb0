"""Who said hello to the leader's start barrier (``--exit-led-by I``): seeds for its exit barrier.

Pod I's exit barrier must reach every pod, or a pod's ``sshd -D`` runs on and the Job never
completes (``agent.core.targets``). It sweeps the Service's answer, but past a cut-short answer
(a Job of more pods than one DNS message lists, ~4,090) that lists only some pods, and the
others come neither from the coordinator (it vouches for pods in the exit barrier, and a
follower's exit barrier begins only once the end has reached it) nor from pod I's start barrier
(on a sparse graph it reached only its few targets). So the pods the answer left out never heard
the end, their workloads running on until ``--exit-timeout``.

Every pod's start barrier probes pod I, though, so pod I heard each pod's hello, from its
address, as its instance. :class:`Callers` keeps, per index, where and as whom it heard it;
:attr:`Callers.seeds` hands the exit barrier (``agent.core.seeded``) each index heard from one
place as one process: tried there first, without DNS. The rest (an index never heard, or heard
from two places or as two processes, or whose seed fails) are asked for by name, paced.

Why an outsider gains nothing by saying hello to pod I claiming pod j: the real pod j said hello
to pod I as well (its start barrier reached pod I), so pod j is claimed from two places and asked
for by name, as without seeds; a follower acts on an end only from pod I as its own start barrier
reached it (``agent.core.exitlead``), which this does not touch. Memory: one entry per index
(the hello's address and instance strings), 28 MB at 100,000 pods (tracemalloc), in pod I only,
and its exit barrier's seeds as much again while it runs. A new process of pod I (restarted)
has heard nobody, so it asks every name the Service's answer leaves out, paced. Pure.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from agent.config.model import Config
from agent.core.seeded import Proven, Seeded
from agent.core.targets import leads
from agent.protocol.wire import START_BARRIER, Identity

__all__ = ["Callers", "led"]


def led(
    config: Config, me: Identity, seed: Mapping[int, Proven] | None, dropped: Callable[[int], None]
) -> tuple[Seeded, Callers | None]:
    """A barrier instance's seeds (``agent.core.seeded``; ``dropped``: told of each one that
    fails) and, in pod I's start barrier, who says hello to it. Pod I's exit barrier asks for
    what no seed gives by name. Seeds need a probe that says hello (it names the process)."""
    leader, start = leads(config, me), me.barrier == START_BARRIER
    seeded = Seeded(seed if config.probe.says_hello else None, dropped, asks=leader and not start)
    return seeded, Callers(me.index) if leader and start else None


class Callers:
    def __init__(self, me: int) -> None:
        """``me``: this pod's index (its own hellos are not a caller's)."""
        self._me = me
        #: index -> (address, instance) it said hello from; None: two claims differ (ask its
        #: name). A tuple, not a ``Proven``: 28 MB at 100,000 pods, not 37
        self._heard: dict[int, tuple[str, str] | None] = {}

    def __len__(self) -> int:
        return len(self._heard)

    def heard(self, index: int, address: str, instance: str) -> None:
        """A hello of this Job and run, claiming ``index``, came from ``address`` as ``instance``
        (its handshake passed; whether DNS lists the address is not asked: see above)."""
        if index == self._me or not address or not instance:
            return
        said = (address, instance)
        if index not in self._heard:
            self._heard[index] = said
        elif self._heard[index] != said:
            self._heard[index] = None  # a restart, or somebody else's claim: DNS decides

    @property
    def seeds(self) -> dict[int, Proven]:
        """Each index heard from one place as one process only."""
        return {i: Proven(*said) for i, said in self._heard.items() if said is not None}
