"""A bounded exhaustive explorer: every interleaving of the shipped cores' events for small N.

Unlike the cluster (one timed schedule per seed), this world has no delays: at every state each
enabled move is tried in turn — deliver the next message on any connection (each in order), carry
out any pending probe, query, dial or hello heard, or restart any pod whose barrier is open (a
new instance, at the same or a new address) while restarts remain — and the search goes depth
first, children in a seeded random order, over the states that result, each a copy. Timers
(rounds, retries, dials, lingers) fire only once nothing is in flight: the network is taken to
be faster than the agents' timers (ms against 0.1-1 s), which keeps the space finite; safety
rests on no timer, so this loses none of it. States are told apart by a fingerprint of what the
cores decide with (reach, views, sessions, arrivals, verdicts, what is in flight), not by the
clock, so two paths to one situation are explored once. After every move the instance-level
safety property is judged from the record the world keeps (who heard whose hello, what was
delivered on which live session), with the same checker as the cluster's.

Its reach is limited by the number of states: N = 2 without restarts is covered completely
(within the bound); with restarts and N = 3 the cap ends the search first. A deliberately broken
coordinator (arrivals counted whatever their view) is caught by the cluster's schedules
(tests/sim/killers.py), not by this explorer within its cap; one that releases at N - 1
arrivals is caught here within a few dozen states (tests/sim/test_mutants.py).
"""

from __future__ import annotations

import gc
import math
import pickle
import random

from tests.sim.world import World

__all__ = ["Explorer"]


class Explorer:
    """Depth-first over every interleaving, up to ``depth`` moves and ``horizon`` seconds."""

    def __init__(
        self,
        n: int,
        *,
        mode: str,
        restarts: int,
        depth: int,
        horizon: float,
        outsiders: int = 0,
        seed: int = 0,
    ) -> None:
        self.depth, self.horizon = depth, horizon
        self.root = World(n, mode, restarts, outsiders)
        for index in range(n):
            self.root.start(index, f"10.{index}.0.0")
        self.visited = 0
        self.released_states = 0
        self._rng = random.Random(seed)
        self.problems: list[str] = []

    def run(self, *, max_states: float = math.inf) -> None:
        # The cyclic GC would scan every state seen and on the stack again and again (most of
        # the run's time); the states hold no cycles worth collecting before the run ends.
        gc.disable()
        try:
            self._search(max_states)
        finally:
            gc.enable()

    def _search(self, max_states: float) -> None:
        seen: set[object] = set()
        stack: list[tuple[World, int]] = [(self.root, 0)]
        while stack and self.visited < max_states and not self.problems:
            world, depth = stack.pop()
            key = world.fingerprint()
            if key in seen:
                continue
            seen.add(key)
            self.visited += 1
            if (problems := world.unsafe()) != []:
                self.problems = problems
                return
            if all(i.released_at is not None for i in world.insts if i.alive and not i.outsider):
                self.released_states += 1
            if depth >= self.depth:
                continue
            # A pickle round trip copies a state several times faster than deepcopy.
            image = pickle.dumps(world, pickle.HIGHEST_PROTOCOL)
            moves = list(world.moves(self.horizon))
            # Children in a seeded random order: where the state cap ends a search, what was
            # covered is spread over the tree, not one corner of it (restarts at the start).
            self._rng.shuffle(moves)
            for move in moves:
                child = pickle.loads(image)
                child.apply(move)
                stack.append((child, depth + 1))
