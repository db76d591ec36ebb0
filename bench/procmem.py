"""What a batch of agent processes costs the machine's memory, read from /proc as it runs.

RSS alone overstates it: each agent's RSS counts the pages it shares with every other agent
(the interpreter, shared libraries, the page cache of the same .pyc files). PSS splits each
shared page among the processes that map it, so the PSS of all agents adds up to what they take
together; USS (private pages) is what one more agent adds. The machine's own view is
MemAvailable: how far it fell below where it was before the first launch.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Protocol, Self

__all__ = ["MemoryWatch", "Peaks", "available_kb", "rollup"]


class Process(Protocol):
    """What the watch needs of an agent: its pid, and whether it is still unreaped."""

    @property
    def pid(self) -> int: ...

    @property
    def live(self) -> bool: ...


@dataclass
class Peaks:
    """One process's highest figures seen, in kB (``hwm``: the kernel's own peak RSS)."""

    hwm: int = 0
    pss: int = 0
    uss: int = 0


def rollup(pid: int) -> dict[str, int]:
    """``/proc/PID/smaps_rollup`` as kB by field (empty when the process is gone or a zombie),
    and ``VmHWM`` from its status."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    fields: dict[str, int] = {}
    for line in [*text.splitlines()[1:], *status.splitlines()]:
        key, _, rest = line.partition(":")
        parts = rest.split()
        if len(parts) == 2 and parts[1] == "kB" and parts[0].isdigit():
            fields[key] = int(parts[0])
    return fields


def available_kb() -> int:
    """The machine's MemAvailable: what it could still give without swapping."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1])
    raise OSError("no MemAvailable in /proc/meminfo")


@dataclass
class MemoryWatch:
    """``with MemoryWatch(every) as w: w.add(key, process)``: one thread reads every live
    process's rollup each ``every`` seconds (1,000 rollups cost ~0.1 s of CPU, so not faster)
    and keeps each one's peaks, and the lowest MemAvailable seen."""

    every: float = 1.0
    peaks: dict[int, Peaks] = field(default_factory=dict)
    available_before: int = field(default_factory=available_kb)
    available_min: int = 0
    _procs: dict[int, Process] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def add(self, key: int, proc: Process) -> None:
        with self._lock:
            self._procs[key] = proc
            self.peaks[key] = Peaks()

    def sweep(self) -> None:
        """One pass over the live processes (and MemAvailable)."""
        with self._lock:
            procs = list(self._procs.items())
        for key, proc in procs:
            if not proc.live:
                continue
            fields = rollup(proc.pid)
            if not fields:
                continue
            peak = self.peaks[key]
            peak.hwm = max(peak.hwm, fields.get("VmHWM", 0))
            peak.pss = max(peak.pss, fields.get("Pss", 0))
            uss = fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0)
            peak.uss = max(peak.uss, uss)
        available = available_kb()
        self.available_min = min(self.available_min or available, available)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            started = time.monotonic()
            self.sweep()
            # a sweep slower than the period (a loaded machine) must not take a core of its own
            self._stop.wait(time.monotonic() - started)

    def __enter__(self) -> Self:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def summary(self) -> dict[str, float | None]:
        """Per process mean and max of the peaks (MB), and the machine's drop in MemAvailable."""
        seen = [p for p in self.peaks.values() if p.hwm]
        mb = 1024

        def stat(values: list[int]) -> tuple[float | None, float | None]:
            if not values:
                return None, None
            return round(sum(values) / len(values) / mb, 1), round(max(values) / mb, 1)

        rss_mean, rss_max = stat([p.hwm for p in seen])
        pss_mean, pss_max = stat([p.pss for p in seen])
        uss_mean, uss_max = stat([p.uss for p in seen])
        used = self.available_before - (self.available_min or self.available_before)
        return {
            "pods_sampled": len(seen),
            "peak_rss_mb_mean": rss_mean,
            "peak_rss_mb_max": rss_max,
            "peak_pss_mb_mean": pss_mean,
            "peak_pss_mb_max": pss_max,
            "peak_uss_mb_mean": uss_mean,
            "peak_uss_mb_max": uss_max,
            "machine_used_peak_mb": round(used / mb),
            "machine_used_per_pod_mb": round(used / mb / max(1, len(self.peaks)), 1),
        }
