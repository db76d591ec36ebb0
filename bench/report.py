"""Summaries of the samples: medians and spreads, ratios against peer-agent, the table, the plot."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["Row", "add_ratios", "plot", "summarize", "table"]

Row = dict[str, Any]
#: peer-agent's targets drawn on the plot: N -> value (release: issue 16, launch to workload)
TARGETS = {"release": {64: 0.3}, "dns": {64: 2.0, 256: 2.0}}


def summarize(samples: Sequence[dict[str, Any]], key: str) -> dict[str, Any]:
    """Median, min and max of ``key`` over the runs that passed, and how many runs failed."""
    # A run that failed (a pod never released, a bound hit) has no figure worth a median.
    values = [float(s[key]) for s in samples if s.get("ok") and s.get(key) is not None]
    failed = sum(not s.get("ok", False) for s in samples)
    out: dict[str, Any] = {"runs": len(samples), "failed": failed, "n": len(values)}
    if values:
        out |= {"median": statistics.median(values), "min": min(values), "max": max(values)}
    return out


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "s":
        return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"
    return f"{value:.1f} {unit}" if unit else f"{value:.2f}"


def table(rows: Sequence[Row]) -> str:
    """Markdown: case, tool, median, spread, ratio to peer-agent's median, target, runs."""
    head = "| case | tool | median | min-max | x peer-agent | target | runs (failed) |"
    lines = [head, "|---|---|---|---|---|---|---|"]
    for row in rows:
        s, unit = row["summary"], row["unit"]
        spread = f"{_fmt(s.get('min'), unit)} - {_fmt(s.get('max'), unit)}" if s.get("n") else "—"
        ratio = row.get("ratio")
        lines.append(
            f"| {row['case']} | {row['tool']} | {_fmt(s.get('median'), unit)} | {spread} | "
            f"{f'{ratio:.1f}x' if ratio is not None else ''} | {row.get('target', '')} | "
            f"{s['runs']} ({s['failed']}) |"
        )
    return "\n".join(lines)


def add_ratios(rows: list[Row]) -> None:
    """Each baseline's median over peer-agent's in the same case (how many times slower)."""
    ours = {r["case"]: r["summary"].get("median") for r in rows if r["tool"] == "peer-agent"}
    for row in rows:
        mine, base = row["summary"].get("median"), ours.get(row["case"])
        if row["tool"] != "peer-agent" and mine is not None and base:
            row["ratio"] = mine / base


def plot(rows: Sequence[Row], path: Path, *, machine: str) -> bool:
    """Release latency and DNS load against N, one line per tool (log scale: the baselines are
    orders of magnitude off). False when matplotlib is missing (the JSON has the numbers)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    panels = [
        ("release", "release latency (s)", "last pod launched → last workload runs"),
        ("dns", "DNS queries / pod / s waiting", "cluster DNS load, starts spread over 10 s"),
    ]
    # Only the panels this run has figures for (e.g. `--cases release` draws one).
    panels = [p for p in panels if any(r.get("group") == p[0] for r in rows)]
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4.2), squeeze=False)
    styles = {"peer-agent": "o-", "seed": "s--", "nslookup": "^--", "wait-for-it": "d--"}
    for ax, (group, ylabel, title) in zip(axes[0], panels, strict=True):
        for tool, style in styles.items():
            points = sorted(
                (r["n"], r["summary"])
                for r in rows
                if r.get("group") == group and r["tool"] == tool and r["summary"].get("n")
            )
            if not points:
                continue
            xs = [n for n, _ in points]
            med = [s["median"] for _, s in points]
            low = [s["median"] - s["min"] for _, s in points]
            high = [s["max"] - s["median"] for _, s in points]
            ax.errorbar(xs, med, yerr=[low, high], fmt=style, capsize=3, label=tool)
        for n, target in TARGETS[group].items():
            ax.plot(
                [n],
                [target],
                "k_",
                markersize=18,
                label="target" if n == min(TARGETS[group]) else None,
            )
        ns = sorted({r["n"] for r in rows if r.get("group") == group})
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        if ns:
            ax.set_xticks(ns, [str(n) for n in ns])
            ax.set_xlim(ns[0] / 1.6, ns[-1] * 1.6)
        ax.set_xlabel("pods (N)")
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(
        f"peer-agent against the baselines (median, bars: min-max)\n{machine}", fontsize=10
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
