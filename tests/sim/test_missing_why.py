"""DNS queries per pod when missing peers are asked for by name only once the Service's answer
has been unable to pair them with its silent addresses for a while (``agent.core.ambiguity``):
the in-memory cluster of shipped cores.

Every pod of a Job is published from its address on (publishNotReadyAddresses) and refuses until
its agent binds, so every start-up is briefly ambiguous. A fault-free start asks no name but
each pod's own: its queries are exactly those of the same run with the by-name question turned
off. Only a pod that stays silent past ``Timing.ambiguous_by_name_after`` makes the others ask.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections import Counter

import pytest

from agent.core.timing import DEFAULT_TIMING, Timing
from tests.sim.cluster import Cluster
from tests.sim.node import Node, Pod

pytestmark = pytest.mark.timeout(60)

AFTER = DEFAULT_TIMING.ambiguous_by_name_after
NEVER = dataclasses.replace(DEFAULT_TIMING, ambiguous_by_name_after=math.inf)


@dataclasses.dataclass
class Run:
    cluster: Cluster
    #: DNS queries by pod index: the Service's rounds, and names asked (``Attempt``s that
    #: resolve; those that reuse addresses that refused a moment ago ask nothing)
    queries: Counter[int]
    #: (time, asking pod, asked index) of each name asked other than the pod's own
    by_name: list[tuple[float, int, int]]


def _start(n: int, starts: list[float], *, timing: Timing, seed: int = 3) -> Run:
    """Every pod created and published at 0 (an image pull, init containers: its address
    refuses until then); pod ``i``'s agent starts at ``starts[i]``, in that pod."""
    c = Cluster(n, seed=seed)
    c.timing = timing
    run = Run(c, Counter(), [])
    attempt, sweep = c.tasks.attempt, c.tasks.sweep

    def counted_attempt(
        src: Node, index: int, instance: str = "", addresses: tuple[str, ...] = (), **kw: bool
    ) -> None:
        if not addresses:
            run.queries[src.me.index] += 1
        if index != src.me.index:
            run.by_name.append((c.now, src.me.index, index))
        attempt(src, index, instance, addresses, **kw)

    def counted_sweep(src: Node) -> None:
        run.queries[src.me.index] += 1
        sweep(src)

    c.tasks.attempt = counted_attempt  # type: ignore[method-assign]
    c.tasks.sweep = counted_sweep  # type: ignore[method-assign]
    for i in range(n):  # created and published now, refusing until its agent starts
        c.pods.append(Pod(i, f"10.{i}.0.{i}", published_at=0.0))
    for i, at in enumerate(starts):
        c.at(at, functools.partial(c.start, i, new_pod=False))
    c.run_until(max(starts) + 30.0)
    return run


def _released(run: Run) -> bool:
    return all(node.counted for node in run.cluster.current().values())


def test_a_fault_free_start_asks_no_more_dns_than_without_the_by_name_question() -> None:
    """16 pods whose agents start over 10 s, each refusing until then: every pod released, no
    name asked but each pod's own, and the same queries per pod, pod by pod, as the same run
    with the by-name question turned off."""
    starts = [i * 10.0 / 15 for i in range(16)]
    shipped, never = _start(16, starts, timing=DEFAULT_TIMING), _start(16, starts, timing=NEVER)
    assert _released(shipped) and shipped.cluster.unsafe() == []
    assert shipped.by_name == []
    assert shipped.queries == never.queries


def test_a_pod_silent_past_the_delay_has_the_others_ask_the_missing_names() -> None:
    """The same Job with pods 14 and 15 starting 45 s late: the others ask for them by name
    once 30 s of not being able to tell them apart have passed, never before, and only for
    them; and all pass once they start."""
    starts = [i * 10.0 / 15 for i in range(14)] + [45.0, 45.0]
    run = _start(16, starts, timing=DEFAULT_TIMING)
    assert _released(run) and run.cluster.unsafe() == []
    assert run.by_name, "nobody asked"
    assert {asked for _, _, asked in run.by_name} == {14, 15}
    # ambiguous from the second round after the last of the others started (at 10 s)
    assert min(t for t, _, _ in run.by_name) >= AFTER
