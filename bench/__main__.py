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
from pathlib import Path
from typing import Any

from bench import coldstart, local, loopscale
from bench.clustercases import Setup
from bench.common import ROOT
from bench.plan import ALL, FAST, FULL, QUICK, Metric, Plan, late_start, repeat, row, runs_for
from bench.report import Row, add_ratios, plot, summarize, table

CASES = (
    "coldstart",
    "footprint",
    "idle",
    "loopback",
    "sweep",
    "coordinator",
    "release",
    "release100m",
    "barriercpu",
    "dns",
    "n300",
    "flood",
)
CLUSTER_CASES = ("release", "release100m", "barriercpu", "dns")


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
            rows.append(row(m, tool, None, s))
    # What the agent adds to anyio.run (issue 22): each round's difference, so that both
    # starts of a pair met the same load
    over = [
        {"ok": a.get("ok") and b.get("ok"), "over_s": a.get("cpu_s", 0) - b.get("cpu_s", 0)}
        for a, b in zip(samples["peer-agent"], samples["anyio.run"], strict=True)
    ]
    m = Metric("cold start CPU over anyio.run of an empty coroutine", "over_s", "s", "≤ 15 ms")
    rows.append(row(m, "peer-agent", None, over))
    return rows


def _loopscale(plan: Plan, cases: list[str], log: Callable[[str], None]) -> list[Row]:
    """n300: each mode at N = loop_n on loopback; flood: the same under a connection flood
    (bench.loopscale). Minutes a run on two cores: one run each unless --repeats says more."""
    n, runs, rows = plan.loop_n, max(1, plan.repeats - 2), []
    todo = [(m, False) for m in loopscale.MODES if "n300" in cases]
    todo += [(m, True) for m in loopscale.FLOOD_MODES if "flood" in cases]
    for mode, flood in todo:
        what = f"N={n} loopback, {loopscale.LABELS[mode]}{', flooded' if flood else ''}"
        log(f"{what}: real agents over unbound")

        def one(mode: str = mode, flood: bool = flood) -> dict[str, Any]:
            return loopscale.scale(mode, n, flood=flood)

        s = repeat(what, runs, one, log)
        metrics = [
            Metric(f"{what}: last pod launched → last pass", "launch_to_last_pass_s", "s"),
            Metric(f"{what}: CPU per pod", "cpu_per_pod_s", "s"),
            Metric(f"{what}: peak RSS per pod (median)", "rss_per_pod_mb", "MB"),
            Metric(f"{what}: peak RSS, coordinator", "rss_coordinator_mb", "MB"),
            Metric(f"{what}: members whose session was redialled", "redialled", "", "0"),
        ]
        if flood:
            metrics.append(Metric(f"{what}: connections the flood opened", "flood_made", ""))
        if flood and mode == "sidecar":
            metrics.append(Metric(f"{what}: local waiters passed", "waiters_passed", "", f"{n}"))
        rows += [row(m, "peer-agent", n, s) for m in metrics]
    return rows


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
    driver = launchers.driver if launchers else "auto"
    if "coldstart" in cases and launchers is not None:
        log("cold start: exec to the first DNS query, wheel, zipapp and the seed's loop")
        rows += _coldstart(plan, launchers, log)
    if "footprint" in cases:
        log("footprint: 3 agents through a barrier on loopback")
        s = repeat("footprint", r, local.footprint, log)
        for m in (
            Metric("agent peak RSS (member)", "rss_member_mb", "MB", "≤ 30 MB"),
            Metric("agent peak RSS (coordinator, N=3)", "rss_coordinator_mb", "MB", "≤ 30 MB"),
        ):
            rows.append(row(m, "peer-agent", 3, s))
    if "idle" in cases:
        log("idle: 63 agents on loopback waiting for a 64th that never comes")
        s = repeat("idle", max(1, r - 2), local.idle, log)
        for m in (
            Metric(
                "waiting agent: DNS queries / s (loopback, N=64)", "queries_per_agent_s", "", "≤ 2"
            ),
            Metric("waiting agent: CPU ms / s (loopback, N=64)", "cpu_per_agent_ms_s", ""),
        ):
            rows.append(row(m, "peer-agent", 64, s))
    if "loopback" in cases:
        log("release latency on loopback: 63 agents waiting, then the 64th")
        s = repeat("loopback", max(1, r - 1), local.release_loopback, log)
        m = Metric("release latency, N=64, loopback (no cluster)", "latency_s", "s", "≤ 100 ms")
        rows.append(row(m, "peer-agent", 64, s))
    if "sweep" in cases:
        n = plan.sweep_n
        log(f"sweep: one agent probing {n} simulated peers")
        s = repeat(f"sweep {n}", r, lambda: local.sweep(n), log)
        rows.append(
            row(Metric(f"sweep of {n:,} peers", "sweep_s", "s", "≤ 1.5 s"), "peer-agent", n, s)
        )
    if "coordinator" in cases:
        log(f"coordinator: {plan.members} simulated members and one coordinator")
        s = repeat(
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
            rows.append(row(m, "peer-agent", members, s))
    rows += _loopscale(plan, cases, log)
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
        setup = Setup(cpu, agent, driver)
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
            s = repeat(f"{tool} N={n}{limited}", runs, one, log)
            m = Metric(
                f"release: last pod launched → last workload runs, N={n}{limited}",
                "latency_s",
                "s",
                targets.get(n, "") if tool == "peer-agent" else "",
                group,
            )
            rows.append(row(m, tool, n, s))
    if "barriercpu" in cases:
        from bench.clustercases import barrier_cpu

        for n in plan.barriercpu:
            for tool in FAST:
                log(f"barrier CPU: {tool}, N={n}, every pod at once")

                def whole(tool: str = tool, n: int = n) -> dict[str, Any]:
                    return barrier_cpu(
                        tool, n, bound=30.0 + 0.3 * n, setup=Setup(None, agent, driver)
                    )

                s = repeat(f"{tool} N={n}", r, whole, log)
                target = "≤ 100 ms" if n == 64 and tool == "peer-agent" else ""
                m = Metric(f"CPU per pod for the barrier, N={n}", "cpu_per_pod_s", "s", target)
                rows.append(row(m, tool, n, s))
    if "dns" in cases:
        from bench.clustercases import dns_load

        for n, tools in plan.dns.items():
            for tool in tools:
                log(f"DNS load: {tool}, N={n}, starts spread over 10 s")
                runs = runs_for(r, n, tool)

                def spread(tool: str = tool, n: int = n) -> dict[str, Any]:
                    # 255 agents on two cores take 45-50 s to reach each other: room for that
                    setup = Setup(None, agent, driver)
                    return dns_load(tool, n, spread=10.0, bound=30.0 + 0.3 * n, setup=setup)

                s = repeat(f"{tool} N={n}", runs, spread, log)
                m = Metric(
                    f"DNS queries / pod / s waiting, N={n}",
                    "qps_per_pod",
                    "",
                    "≤ 2" if tool == "peer-agent" else "",
                    "dns",
                )
                rows.append(row(m, tool, n, s))
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
        "--agent-driver",
        default="auto",
        choices=("auto", "anyio", "selectors"),
        help="peer-agent's --driver in every case (default auto: selectors for run and wait)",
    )
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
        with coldstart.launchers(args.agent_driver) as launchers:
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
