"""The exit barrier's cost: how long after the last workload ends every agent has left.

N agents (``run --exit-barrier``) on loopback over a real unbound; workload i sleeps ``i * 0.5``
seconds, then writes its end time as its last act. The cost is the last agent's exit minus the
last workload's end, per round. Usage: ``.venv/bin/python -m tools.exit_barrier_cost [N] [ROUNDS]``
"""

from __future__ import annotations

import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from tests.harness.clusterdns import ClusterDNS
from tests.integration.conftest import SERVICE, ZONE, Agents


def _round(agents: Agents, n: int, tmp: Path) -> float:
    ends: list[float] = [0.0] * n
    procs = []
    for i in range(n):
        script = f"sleep {i * 0.5}; date +%s.%N > {tmp}/end-{i}"
        procs.append(agents.start("run", i, n, "--exit-barrier", "--", "sh", "-c", script))

    def reap(i: int) -> None:
        _, err = procs[i].communicate()
        if procs[i].returncode:
            print(err, file=sys.stderr)
        ends[i] = time.time()

    threads = [threading.Thread(target=reap, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(p.returncode == 0 for p in procs), [p.returncode for p in procs]
    last_workload = max(float((tmp / f"end-{i}").read_text()) for i in range(n))
    agents.procs.clear()
    return max(ends) - last_workload


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    with (
        tempfile.TemporaryDirectory() as d,
        ClusterDNS(Path(d) / "dns", zone=ZONE, listen="127.0.0.1") as dns,
    ):
        agents = Agents(dns, Path(d), net=random.randrange(200, 250))  # apart from tests
        for i in range(n):
            agents.publish(i)
        costs = [_round(agents, n, Path(d)) for _ in range(rounds)]
    costs_ms = sorted(c * 1000 for c in costs)
    print(
        f"N={n} rounds={rounds} ({SERVICE}): extra time after the last workload ends, ms: "
        f"median {statistics.median(costs_ms):.0f}, min {costs_ms[0]:.0f}, "
        f"max {costs_ms[-1]:.0f}"
    )


if __name__ == "__main__":
    main()
