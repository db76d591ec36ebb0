"""A named barrier's round trip: from the last pod's client asking to every client answered.

N sidecars on loopback over a real unbound; per round a new name: N-1 clients ask (HTTP, as
curl would), then, once their sidecars run the name's instance, the last one asks.
Usage: ``.venv/bin/python -m tools.named_barrier_rtt [N] [ROUNDS]``
"""

from __future__ import annotations

import http.client
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from tests.harness.clusterdns import ClusterDNS
from tests.integration.conftest import ZONE, Agents, wait_for_line


def _ask(host: str, name: str, done: list[float], i: int) -> None:
    conn = http.client.HTTPConnection(host, 29301, timeout=60)
    conn.request("POST", f"/barrier/{name}")
    assert conn.getresponse().status == 200
    done[i] = time.monotonic()
    conn.close()


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    costs = []
    with (
        tempfile.TemporaryDirectory() as d,
        ClusterDNS(Path(d) / "dns", zone=ZONE, listen="127.0.0.1") as dns,
    ):
        agents = Agents(dns, Path(d), net=random.randrange(200, 250))  # apart from tests
        try:
            for i in range(n):
                agents.publish(i)
            sidecars = [agents.start("sidecar", i, n) for i in range(n)]
            for proc in sidecars:
                wait_for_line(proc, "serving /readyz")
            for r in range(rounds):
                name, done = f"round-{r}", [0.0] * n
                threads = [
                    threading.Thread(target=_ask, args=(agents.address(i), name, done, i))
                    for i in range(n)
                ]
                for i in range(n - 1):
                    threads[i].start()
                    wait_for_line(sidecars[i], f"barrier {name}: topology")
                asked = time.monotonic()
                threads[-1].start()
                for t in threads:
                    t.join()
                costs.append((max(done) - asked) * 1000)
        finally:
            agents.stop_all()
    costs.sort()
    print(
        f"N={n} rounds={rounds}: last client asks -> all clients answered, ms: "
        f"median {statistics.median(costs):.0f}, min {costs[0]:.0f}, max {costs[-1]:.0f}"
    )


if __name__ == "__main__":
    main()
