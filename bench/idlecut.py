"""What a waiting agent does a second while most of its peers are not up: the cut-answer setting
(``bench.cutanswer``'s DNS stub and addresses) with only the first ``UP`` of ``N`` pods launched.

``python -m bench.idlecut N CUT UP [WINDOW_S] [SETTLE_S] [EXTRA_ARGS...]`` launches pods
0 .. UP-1 as ``bench.idlecount`` agents (counting their calls by kind), lets them settle
``SETTLE_S`` seconds after the last is up, then takes each one's counts, its CPU time and the
DNS queries the stub read from it (by kind) at the start and the end of ``WINDOW_S`` seconds,
and prints per-second rates per pod as one JSON object. ``CUT`` >= ``N``: the Service's answer
is whole (``PodsDNS``), as a Job that fits one DNS message sees it.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.common import ROOT, SERVICE_FQDN, AgentProc, fqdn, free_port, raise_nofile
from bench.cutanswer import compiled, cut_dns, kinds, pod_address
from tests.support.podsdns import PodsDNS


def _snapshot(agents: list[AgentProc], where: Path) -> dict[int, dict[str, Any]]:
    for a in agents:
        (where / f"{a.pid}.json").unlink(missing_ok=True)
        os.kill(a.pid, signal.SIGUSR1)
    deadline = time.monotonic() + 10
    out: dict[int, dict[str, Any]] = {}
    while len(out) < len(agents) and time.monotonic() < deadline:
        for i, a in enumerate(agents):
            path = where / f"{a.pid}.json"
            if i not in out and path.exists():
                try:
                    out[i] = json.loads(path.read_text())
                except ValueError:
                    continue  # being written
        time.sleep(0.05)
    return out


def _rates(first: dict[str, Any], last: dict[str, Any]) -> dict[str, Any]:
    span = last["at"] - first["at"]
    keys = set(first["counts"]) | set(last["counts"])
    per_s = {
        k: round((last["counts"].get(k, 0) - first["counts"].get(k, 0)) / span, 3)
        for k in sorted(keys)
    }
    return {
        "span_s": round(span, 1),
        "cpu_ms_s": round(1000 * (last["cpu_s"] - first["cpu_s"]) / span, 2),
        "per_s": {k: v for k, v in per_s.items() if v},
    }


def idle_cut(
    peers: int, cut: int, up: int, window: float, settle: float, extra: tuple[str, ...]
) -> dict[str, Any]:
    raise_nofile(4 * peers + 1024)
    compiled()
    port = free_port()
    if cut >= peers:
        plain = PodsDNS(peers)
        addresses = [pod_address(i) for i in range(peers)]
        for i, address in enumerate(addresses):
            plain.set(fqdn(i), address)
        plain.set(SERVICE_FQDN, *addresses)
        dns: PodsDNS = plain
    else:
        dns, addresses = cut_dns(peers, cut)
    os.environ["BENCH_AGENT"] = str(ROOT / "bench" / "idlecount.py")
    counts = Path(tempfile.mkdtemp(prefix="idlecut-"))
    os.environ["IDLE_COUNTS"] = str(counts)
    args = ("--port", str(port), "--timeout", f"{settle + window + 120:g}s", *extra)
    agents: list[AgentProc] = []
    with dns:
        try:
            for i in range(up):
                where = ("--listen", addresses[i])
                agents.append(AgentProc.launch("wait", i, peers, dns.server_for(i), *where, *args))
                agents[-1].wait_event("start", 60)
            time.sleep(settle)
            asked0, lines0 = Counter(dns.per_name), [len(a.lines) for a in agents]
            first = _snapshot(agents, counts)
            time.sleep(window)
            last = _snapshot(agents, counts)
            asked1, lines1 = Counter(dns.per_name), [len(a.lines) for a in agents]
        finally:
            for a in agents:
                a.kill()
    pods: dict[int, Any] = {}
    for i in range(up):
        if i not in first or i not in last:
            pods[i] = {"note": "no counts", "tail": agents[i].tail(3)}
            continue
        rates = _rates(first[i], last[i])
        span = rates["span_s"]
        window_asked = Counter({k: n - asked0.get(k, 0) for k, n in asked1.items() if k[0] == i})
        asked = kinds_of(window_asked, peers, i)
        rates["stub_queries_per_s"] = {k: round(v / span, 3) for k, v in asked.items()}
        rates["log_lines_per_s"] = round((lines1[i] - lines0[i]) / span, 3)
        pods[i] = rates
    return {"peers": peers, "cut": cut, "up": up, "window_s": window, "args": extra, "pods": pods}


def kinds_of(asked: Counter[tuple[int, str]], peers: int, pod: int) -> dict[str, int]:
    class _Asked:  # ``kinds`` reads a stub's per_name
        per_name = asked

    return kinds(_Asked(), peers, of=pod)  # type: ignore[arg-type]


if __name__ == "__main__":
    argv = sys.argv[1:]
    n, c, u = (int(x) for x in argv[:3])
    w = float(argv[3]) if len(argv) > 3 else 60.0
    s = float(argv[4]) if len(argv) > 4 else 10.0
    print(json.dumps(idle_cut(n, c, u, w, s, tuple(argv[5:])), indent=1))
