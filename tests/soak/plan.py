"""What one soak barrier does, drawn from a seeded RNG before it runs (so it can be replayed).

A plan is pure data: the pod count, each pod's start skew, which agents are killed and when, and
the DNS faults (publication delay, negative caching, records withdrawn and re-added). The same
(seed, number) always gives the same plan; `python -m tests.soak --seed S --only K` replays one.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from typing import Any

MIN_PEERS, MAX_PEERS = 8, 16
MAX_SKEW = 3.0
# A barrier with restarts keeps one pod (the holdout) unscheduled until every kill is done, so
# each kill lands before the release by construction, not by luck: no agent can be released
# while a pod of the Job has not even started. The holdout starts this late...
HOLDOUT_SKEW = (2.2, MAX_SKEW)
# ...and every victim this much earlier, so its agent is up (and reaching peers) when it is hit.
VICTIM_HEAD_START = 1.2


@dataclass(frozen=True)
class Restart:
    """Kill the agent of pod `index`; the Job controller replaces the pod (new address)."""

    index: int
    # Kill once the victim's agent has logged this many `reached` lines; 0: once it has logged
    # its start; -1: as soon as its container runs (the agent is still starting up).
    after_reached: int
    replacement_delay: float  # scheduling delay of the replacement pod


@dataclass(frozen=True)
class Withdrawal:
    """Remove a name from cluster DNS at `at` s after the Job is created; re-add it later."""

    target: str  # "service" (the bulk-discovery name) or "pod" (one pod's hostname)
    index: int | None  # the pod, for target "pod" (0 is the coordinator)
    at: float
    duration: float


@dataclass(frozen=True)
class BarrierPlan:
    number: int
    seed: int
    peers: int
    skews: tuple[float, ...]
    holdout: int | None
    restarts: tuple[Restart, ...]
    publish_delay: float  # EndpointSlice -> DNS lag
    negative_ttl: int  # NXDOMAIN cached this long (0: no cache in front)
    record_ttl: int  # positive answers cached this long (only with a cache in front)
    sandbox_teardown_delay: float  # a killed pod's address keeps answering (RST) this long
    withdrawals: tuple[Withdrawal, ...]

    @property
    def dns_faults(self) -> int:
        """Faults planned: lag, negative cache and each withdrawal count one each."""
        return (self.publish_delay > 0) + (self.negative_ttl > 0) + len(self.withdrawals)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def _r(x: float) -> float:
    return round(x, 2)


def make_plan(number: int, seed: int) -> BarrierPlan:
    # A string seed hashes deterministically (unlike hash() of a tuple across runs).
    rng = random.Random(f"peer-agent-soak:{seed}:{number}")
    peers = rng.randint(MIN_PEERS, MAX_PEERS)
    skews = [_r(rng.uniform(0.0, MAX_SKEW)) for _ in range(peers)]
    n_restarts = rng.choices([0, 1, 2], weights=[4, 4, 2])[0]
    holdout: int | None = None
    restarts: list[Restart] = []
    if n_restarts:
        holdout = rng.randrange(peers)
        skews[holdout] = _r(rng.uniform(*HOLDOUT_SKEW))
        others = [i for i in range(peers) if i != holdout]
        for victim in sorted(rng.sample(others, n_restarts)):
            skews[victim] = _r(rng.uniform(0.0, skews[holdout] - VICTIM_HEAD_START))
            after = -1 if rng.random() < 0.15 else rng.randint(0, peers)
            restarts.append(Restart(victim, after, _r(rng.uniform(0.0, 0.5))))
    publish_delay = 0.0 if rng.random() < 0.5 else _r(rng.uniform(0.1, 1.5))
    negative_ttl = rng.randint(1, 3) if rng.random() < 0.35 else 0
    record_ttl = rng.randint(0, 2) if negative_ttl else 0
    teardown = 0.0 if rng.random() < 0.7 else _r(rng.uniform(0.2, 1.0))
    withdrawals = []
    for _ in range(rng.choices([0, 1, 2], weights=[4, 4, 2])[0]):
        kind = rng.choices(["service", "coordinator", "pod"], weights=[4, 3, 3])[0]
        index = None if kind == "service" else 0 if kind == "coordinator" else rng.randrange(peers)
        target = "service" if kind == "service" else "pod"
        at, duration = _r(rng.uniform(0.3, 3.5)), _r(rng.uniform(0.3, 1.5))
        withdrawals.append(Withdrawal(target, index, at, duration))
    return BarrierPlan(
        number=number,
        seed=seed,
        peers=peers,
        skews=tuple(skews),
        holdout=holdout,
        restarts=tuple(restarts),
        publish_delay=publish_delay,
        negative_ttl=negative_ttl,
        record_ttl=record_ttl,
        sandbox_teardown_delay=teardown,
        withdrawals=tuple(sorted(withdrawals, key=lambda w: w.at)),
    )
