"""What the bench runs and how a case becomes rows: the plan (sizes, tools, repeats), a
metric (one row of the table), repeating a run and summarising its samples."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.report import Row, summarize


@dataclass(frozen=True)
class Metric:
    """One row of the table: which sample key, in what unit, against which target."""

    case: str
    key: str
    unit: str
    target: str = ""
    group: str = ""


@dataclass(frozen=True)
class Plan:
    repeats: int
    sweep_n: int
    members: int
    scale_repeats: int  # the coordinator case takes a minute a run
    release: dict[int, tuple[str, ...]]
    dns: dict[int, tuple[str, ...]]
    coldstart_rounds: int = 11  # each round starts every tool once, in turn
    release100m: tuple[int, ...] = (3, 64)
    barriercpu: tuple[int, ...] = (3, 64)
    loop_n: int = 300  # n300 and flood: agents on loopback, above the shared port's bounds


ALL = ("peer-agent", "seed", "nslookup", "wait-for-it")
FAST = ("peer-agent", "seed")  # the ones that finish within seconds of the last pod
FULL = Plan(
    repeats=3,
    # 4,097 addresses with the agent's own: one DNS answer holds 4,091, the rest go by name
    sweep_n=4096,
    members=10_000,
    scale_repeats=2,
    release={3: ALL, 64: ALL, 256: ("peer-agent", "seed")},
    dns={64: ("peer-agent", "seed", "nslookup"), 256: ("peer-agent", "seed")},
)
QUICK = Plan(
    repeats=1,
    sweep_n=1000,
    members=1000,
    scale_repeats=1,
    release={3: ALL, 64: ("peer-agent", "seed")},
    dns={64: ("peer-agent", "seed")},
    coldstart_rounds=3,
    release100m=(3,),
    barriercpu=(3,),
    loop_n=24,
)


def runs_for(repeats: int, n: int, tool: str) -> int:
    """Cluster runs take 15 s (N=64) to over a minute (N=256, or a polling baseline that hits
    its bound): fewer of those, so the full run stays near 15 minutes on two cores."""
    if n < 64 or (n < 256 and tool in FAST):
        return repeats
    return max(1, repeats - 2)


def late_start(n: int, rng: random.Random) -> float:
    """How late the last pod starts at the earliest (later when the others are not all waiting
    for it yet): after the others have all started (Python agents take about 0.12 CPU-s each to
    start, on two cores) plus a random phase, so that a loop polling every second or two is not
    caught at the same point of its period every run."""
    return 2.0 + 0.12 * n + rng.uniform(0.0, 2.0)


def repeat(
    what: str, runs: int, one: Callable[[], dict[str, Any]], log: Callable[[str], None]
) -> list[dict[str, Any]]:
    samples = []
    for i in range(runs):
        started = time.monotonic()
        sample = one()
        took = time.monotonic() - started
        sample["took_s"] = round(took, 1)
        shown = {k: v for k, v in sample.items() if k not in ("ok", "note")}
        note = f"  [{sample['note']}]" if sample.get("note") else ""
        log(f"  {what} run {i + 1}/{runs} ({took:.0f}s): {shown}{note}")
        samples.append(sample)
    return samples


def row(metric: Metric, tool: str, n: int | None, samples: list[dict[str, Any]]) -> Row:
    return {
        "case": metric.case,
        "group": metric.group,
        "tool": tool,
        "n": n,
        "key": metric.key,
        "unit": metric.unit,
        "target": metric.target,
        "summary": summarize(samples, metric.key),
        "samples": samples,
    }
