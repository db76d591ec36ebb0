"""``python -m bench [--quick] [--repeats R] [--cases a,b]``: run the cases, print the table,
write ``bench/results/latest.json`` and draw ``docs/benchmarks.png``.

Which sizes and tools each case runs, and how often, is the plan below; ``--quick`` is a smoke
run (smaller sizes, one run each) that exercises every code path in a couple of minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import coldstart, cutanswer, local
from bench.clustercases import Setup
from bench.common import ROOT
from bench.report import Row, add_ratios, plot, summarize, table

CASES = (
    "coldstart",
    "footprint",
    "idle",
    "loopback",
    "sweep",
    "coordinator",
    "cutanswer",
    "release",
    "release100m",
    "barriercpu",
    "dns",
)
CLUSTER_CASES = ("release", "release100m", "barriercpu", "dns")


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
    cut_answer: tuple[int, int]  # (N, cut): the Service's answer lists the first cut addresses
    release: dict[int, tuple[str, ...]]
    dns: dict[int, tuple[str, ...]]
    coldstart_rounds: int = 11  # each round starts every tool once, in turn
    release100m: tuple[int, ...] = (3, 64)
    barriercpu: tuple[int, ...] = (3, 64)


ALL = ("peer-agent", "seed", "nslookup", "wait-for-it")
FAST = ("peer-agent", "seed")  # the ones that finish within seconds of the last pod
FULL = Plan(
    repeats=3,
    # 4,097 addresses with the agent's own: one DNS answer holds 4,091, the rest go by name
    sweep_n=4096,
    members=10_000,
    scale_repeats=2,
    cut_answer=(128, 32),
    release={3: ALL, 64: ALL, 256: ("peer-agent", "seed")},
    dns={64: ("peer-agent", "seed", "nslookup"), 256: ("peer-agent", "seed")},
)
QUICK = Plan(
    repeats=1,
    sweep_n=1000,
    members=1000,
    scale_repeats=1,
    cut_answer=(24, 8),
    release={3: ALL, 64: ("peer-agent", "seed")},
    dns={64: ("peer-agent", "seed")},
    coldstart_rounds=3,
    release100m=(3,),
    barriercpu=(3,),
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


def _repeat(
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


def _row(metric: Metric, tool: str, n: int | None, samples: list[dict[str, Any]]) -> Row:
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


def _coldstart(plan: Plan, launchers: coldstart.Launchers, log: Callable[[str], None]) -> list[Row]:
    """Every tool once a round, in turn, so load on the machine hits them alike."""
    samples: dict[str, list[dict[str, Any]]] = {tool: [] for tool in coldstart.TOOLS}
    for i in range(plan.coldstart_rounds):
        for tool in coldstart.TOOLS:
            samples[tool].append(coldstart.cold_start(launchers, tool))
        shown = {t: s[-1].get("cpu_s", s[-1].get("note")) for t, s in samples.items()}
        log(f"  cold start round {i + 1}/{plan.coldstart_rounds}: CPU s {shown}")
    rows = []
    targets = {"peer-agent": "≤ 60 ms", "peer-agent zipapp": "≤ wheel + 10 %"}
    for tool, s in samples.items():
        for m in (
            Metric("cold start → first DNS query: CPU", "cpu_s", "s", targets.get(tool, "")),
            Metric("cold start → first DNS query: wall", "wall_s", "s"),
        ):
            rows.append(_row(m, tool, None, s))
    # What the agent adds to anyio.run (issue 22): each round's difference, so that both
    # starts of a pair met the same load
    over = [
        {"ok": a.get("ok") and b.get("ok"), "over_s": a.get("cpu_s", 0) - b.get("cpu_s", 0)}
        for a, b in zip(samples["peer-agent"], samples["anyio.run"], strict=True)
    ]
    m = Metric("cold start CPU over anyio.run of an empty coroutine", "over_s", "s", "≤ 15 ms")
    rows.append(_row(m, "peer-agent", None, over))
    return rows


def _cut_answer(plan: Plan, log: Callable[[str], None]) -> list[Row]:
    n, cut = plan.cut_answer
    log(f"cut answer: {n} agents, the Service's answer cut at {cut} addresses")
    s = _repeat("cutanswer", plan.scale_repeats, lambda: cutanswer.cut_answer(n, cut), log)
    return [
        _row(m, "peer-agent", n, s)
        for m in (
            Metric(f"cut answer ({cut} of {n}): last release", "last_release_s", "s", "≤ 120 s"),
            Metric(
                f"cut answer ({cut} of {n}): DNS queries per pod (max)", "queries_per_pod_max", ""
            ),
            Metric(
                f"cut answer ({cut} of {n}): DNS queries per pod (mean)",
                "queries_per_pod_mean",
                "",
            ),
        )
    ]


def run(
    plan: Plan,
    cases: list[str],
    log: Callable[[str], None],
    launchers: coldstart.Launchers | None = None,
) -> list[Row]:
    rows: list[Row] = []
    rng = random.Random(20261126)
    r = plan.repeats
    # The cluster cases run the installed wheel, as the image has it (None: this checkout).
    agent = launchers.agent_command() if launchers else ()
    if "coldstart" in cases and launchers is not None:
        log("cold start: exec to the first DNS query, wheel, zipapp and the seed's loop")
        rows += _coldstart(plan, launchers, log)
    if "footprint" in cases:
        log("footprint: 3 agents through a barrier on loopback")
        s = _repeat("footprint", r, local.footprint, log)
        for m in (
            Metric("agent peak RSS (member)", "rss_member_mb", "MB", "≤ 30 MB"),
            Metric("agent peak RSS (coordinator, N=3)", "rss_coordinator_mb", "MB", "≤ 30 MB"),
        ):
            rows.append(_row(m, "peer-agent", 3, s))
    if "idle" in cases:
        log("idle: 63 agents on loopback waiting for a 64th that never comes")
        s = _repeat("idle", max(1, r - 2), local.idle, log)
        for m in (
            Metric(
                "waiting agent: DNS queries / s (loopback, N=64)", "queries_per_agent_s", "", "≤ 2"
            ),
            Metric("waiting agent: CPU ms / s (loopback, N=64)", "cpu_per_agent_ms_s", ""),
        ):
            rows.append(_row(m, "peer-agent", 64, s))
    if "loopback" in cases:
        log("release latency on loopback: 63 agents waiting, then the 64th")
        s = _repeat("loopback", max(1, r - 1), local.release_loopback, log)
        m = Metric("release latency, N=64, loopback (no cluster)", "latency_s", "s", "≤ 100 ms")
        rows.append(_row(m, "peer-agent", 64, s))
    if "sweep" in cases:
        n = plan.sweep_n
        log(f"sweep: one agent probing {n} simulated peers")
        s = _repeat(f"sweep {n}", r, lambda: local.sweep(n), log)
        rows.append(
            _row(Metric(f"sweep of {n:,} peers", "sweep_s", "s", "≤ 1.5 s"), "peer-agent", n, s)
        )
    if "coordinator" in cases:
        log(f"coordinator: {plan.members} simulated members and one coordinator")
        s = _repeat(
            "coordinator", plan.scale_repeats, lambda: local.coordinator_scale(plan.members), log
        )
        members = s[0].get("members", plan.members) if s else plan.members
        for m in (
            Metric(
                f"coordinator, {members:,} members: last arrival → last release",
                "arrive_to_release_s",
                "s",
                "≤ 2 s",
            ),
            Metric(f"coordinator, {members:,} members: peak RSS", "rss_mb", "MB"),
            Metric(
                f"coordinator, {members:,} members: reach all (push and by name)",
                "reach_all_s",
                "s",
            ),
        ):
            rows.append(_row(m, "peer-agent", members, s))
    if "cutanswer" in cases:
        rows += _cut_answer(plan, log)
    if set(cases) & set(CLUSTER_CASES) and os.geteuid() != 0:
        log(f"{', '.join(CLUSTER_CASES)}: skipped (the cluster in a box needs root)")
        return rows
    # (N, tools, every pod's CPU limit, targets, plot group)
    releases: list[tuple[int, tuple[str, ...], str | None, dict[int, str], str]] = []
    if "release" in cases:
        targets = {64: "≤ 300 ms", 256: "< seed"}
        releases += [(n, tools, None, targets, "release") for n, tools in plan.release.items()]
    if "release100m" in cases:
        releases += [(n, FAST, "100m", {3: "≤ 1 s"}, "") for n in plan.release100m]
    for n, tools, cpu, targets, group in releases:
        from bench.clustercases import release_latency

        limited = f", every pod limits.cpu {cpu}" if cpu else ""
        setup = Setup(cpu, agent)
        for tool in tools:
            log(f"release latency: {tool}, N={n}{limited}")
            bound = 30.0 + 0.05 * n  # after the late pod: seconds a tool gets
            settle = 30.0 + 0.3 * n  # for the others to wait (255 agents: 50 s, 2 cores)

            def one(
                tool: str = tool,
                n: int = n,
                bound: float = bound,
                settle: float = settle,
                setup: Setup = setup,
            ) -> dict[str, Any]:
                late = late_start(n, rng)
                return release_latency(tool, n, late=late, bound=bound, settle=settle, setup=setup)

            # The polling baselines at N >= 64 take half a minute a run: one run fewer.
            runs = runs_for(r, n, tool)
            s = _repeat(f"{tool} N={n}{limited}", runs, one, log)
            m = Metric(
                f"release: last pod launched → last workload runs, N={n}{limited}",
                "latency_s",
                "s",
                targets.get(n, "") if tool == "peer-agent" else "",
                group,
            )
            rows.append(_row(m, tool, n, s))
    if "barriercpu" in cases:
        from bench.clustercases import barrier_cpu

        for n in plan.barriercpu:
            for tool in FAST:
                log(f"barrier CPU: {tool}, N={n}, every pod at once")

                def whole(tool: str = tool, n: int = n) -> dict[str, Any]:
                    return barrier_cpu(tool, n, bound=30.0 + 0.3 * n, setup=Setup(None, agent))

                s = _repeat(f"{tool} N={n}", r, whole, log)
                target = "≤ 100 ms" if n == 64 and tool == "peer-agent" else ""
                m = Metric(f"CPU per pod for the barrier, N={n}", "cpu_per_pod_s", "s", target)
                rows.append(_row(m, tool, n, s))
    if "dns" in cases:
        from bench.clustercases import dns_load

        for n, tools in plan.dns.items():
            for tool in tools:
                log(f"DNS load: {tool}, N={n}, starts spread over 10 s")
                runs = runs_for(r, n, tool)

                def spread(tool: str = tool, n: int = n) -> dict[str, Any]:
                    # 255 agents on two cores take 45-50 s to reach each other: room for that
                    setup = Setup(None, agent)
                    return dns_load(tool, n, spread=10.0, bound=30.0 + 0.3 * n, setup=setup)

                s = _repeat(f"{tool} N={n}", runs, spread, log)
                m = Metric(
                    f"DNS queries / pod / s waiting, N={n}",
                    "qps_per_pod",
                    "",
                    "≤ 2" if tool == "peer-agent" else "",
                    "dns",
                )
                rows.append(_row(m, tool, n, s))
    return rows


def revision() -> str:
    """The commit measured, and whether agent/ had uncommitted changes then."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return done.stdout.strip()

    dirty = " (agent/ modified)" if git("status", "--porcelain", "agent") else ""
    return git("rev-parse", "--short", "HEAD") + dirty


def machine() -> str:
    return f"{os.cpu_count()} cores, Python {platform.python_version()}, {platform.machine()}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: small sizes, one run")
    parser.add_argument("--repeats", type=int, help="runs per case (default 3; quick: 1)")
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated: {CASES}")
    parser.add_argument(
        "--baselines",
        default=",".join(ALL[1:]),
        help=f"the baselines the release and DNS cases run beside peer-agent: {ALL[1:]}",
    )
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "latest.json")
    parser.add_argument("--plot", type=Path, default=ROOT / "docs" / "benchmarks.png")
    parser.add_argument(
        "--replot", action="store_true", help="no runs: table and plot from the JSON file"
    )
    args = parser.parse_args(argv)
    if args.replot:
        saved = json.loads(args.json.read_text())
        for row in saved["rows"]:  # summaries again, in case the rules changed since the run
            row["summary"] = summarize(row["samples"], row["key"])
            row.pop("ratio", None)
        add_ratios(saved["rows"])
        print(table(saved["rows"]))
        plot(saved["rows"], args.plot, machine=saved["machine"])
        return 0
    plan = QUICK if args.quick else FULL
    if args.repeats:
        plan = Plan(
            **{
                **plan.__dict__,
                "repeats": args.repeats,
                "scale_repeats": min(plan.scale_repeats, args.repeats),
            }
        )
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    if unknown := set(cases) - set(CASES):
        parser.error(f"unknown cases: {', '.join(sorted(unknown))}")
    baselines = {b.strip() for b in args.baselines.split(",") if b.strip()}
    if unknown := baselines - set(ALL):
        parser.error(f"unknown baselines: {', '.join(sorted(unknown))}")
    keep = baselines | {"peer-agent"}

    def only(tools: dict[int, tuple[str, ...]]) -> dict[int, tuple[str, ...]]:
        return {n: tuple(t for t in ts if t in keep) for n, ts in tools.items()}

    plan = Plan(**{**plan.__dict__, "release": only(plan.release), "dns": only(plan.dns)})

    def log(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    started, measured = time.monotonic(), revision()  # what was measured: before, not after
    if {"coldstart", *CLUSTER_CASES} & set(cases):
        log("building the wheel (into a fresh venv) and the zipapp")
        with coldstart.launchers() as launchers:
            rows = run(plan, cases, log, launchers)
    else:
        rows = run(plan, cases, log)
    add_ratios(rows)
    elapsed = time.monotonic() - started
    print(table(rows))
    print(f"\n{machine()}; {elapsed / 60:.1f} min; {'quick' if args.quick else 'full'} run")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "machine": machine(),
                "revision": measured,
                "quick": args.quick,
                "elapsed_s": round(elapsed, 1),
                "rows": rows,
            },
            indent=1,
        )
    )
    print(f"figures: {args.json}")
    if any(r.get("group") for r in rows):
        if plot(rows, args.plot, machine=machine()):
            print(f"plot: {args.plot}")
        else:
            print("plot: skipped (pip install -e '.[bench]' for matplotlib)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
