"""A Job of N real agents on loopback over a real unbound: how long until every one has passed,
and the CPU they spent. ``MODE``: ``wait``, ``sidecar`` (the shared port, agent.io.mux) or
``exit`` (``run --exit-barrier -- true``: the start and the exit barrier on the shared port).

Pods are started one after the other and each published as it starts (as a pod's address is
when it has one); N above the handshake bound (256) shows that member sessions are not counted
against it. Usage: ``.venv/bin/python -m tools.mux_scale MODE [N] [TIMEOUT_S]``; heavy at
N = 300 (300 Python processes): run it under ``flock /tmp/peer-agent-heavy.lock``.
"""

from __future__ import annotations

import os
import random
import re
import resource
import sys
import tempfile
import time
from pathlib import Path

from tests.faults.conftest import AgentProcess
from tests.harness.clusterdns import ClusterDNS

ZONE, SERVICE, NAMESPACE, JOB = "cluster.local", "scale-svc", "default", "scale-job"
SERVICE_FQDN = f"{SERVICE}.{NAMESPACE}.svc.{ZONE}"
_PASSED = {
    "wait": "barrier released",
    "sidecar": "serving /readyz",
    "exit": "exit barrier: barrier released",
}


def _address(net: int, i: int) -> str:
    """Pod ``i``'s loopback address: 127.<net>.<i // 250>.<i % 250 + 1>."""
    return f"127.{net}.{i // 250}.{i % 250 + 1}"


def _argv(
    mode: str, i: int, n: int, dns: ClusterDNS, net: int, port: int, timeout: int
) -> list[str]:
    command = {"wait": ["wait"], "sidecar": ["sidecar", "--health-port", str(port + 1)]}
    return [
        *command.get(mode, ["run", "--exit-barrier"]),
        *("--peers", str(n), "--index", str(i), "--hostname", f"{JOB}-{i}"),
        *("--service", SERVICE, "--namespace", NAMESPACE),
        *("--dns-server", f"{dns.address}:{dns.port}", "--listen", _address(net, i)),
        *("--port", str(port), "--timeout", f"{timeout}s"),
        *(["--", "true"] if mode == "exit" else []),
    ]


def _sessions(log: str) -> int:
    """The sessions count of the start barrier's release line (``… 1 sessions, …``)."""
    for line in log.splitlines():
        if "barrier released" in line and "exit barrier" not in line:
            found = re.search(r"(\d+) sessions", line)
            return int(found.group(1)) if found else 0
    return 0


def run(mode: str, n: int, timeout: int) -> str:
    net, port = 100 + os.getpid() % 50, random.Random().randrange(30000, 40000, 2)
    with (
        tempfile.TemporaryDirectory() as d,
        ClusterDNS(Path(d) / "dns", zone=ZONE, listen="127.0.0.1") as dns,
    ):
        cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
        started, agents = time.monotonic(), []
        for i in range(n):
            agents.append(AgentProcess(_argv(mode, i, n, dns, net, port, timeout)))
            listed = [f"A {_address(net, k)}" for k in range(i + 1)]
            dns.set_many({f"{JOB}-{i}.{SERVICE_FQDN}": listed[-1:], SERVICE_FQDN: listed})
        spawned = time.monotonic() - started
        try:
            passed = max(a.wait_line(_PASSED[mode], timeout=timeout) for a in agents) - started
            outcome = f"all passed {passed - spawned:.1f} s after the last start"
        except AssertionError:
            count = sum(_PASSED[mode] in a.stderr for a in agents)
            outcome = f"{count} of {n} passed within {timeout} s"
        for agent in agents:
            if mode == "sidecar":
                agent.stop()
            else:
                agent.finish(timeout)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    used = after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime
    cut = sum(_sessions(a.stderr) > 1 for a in agents[1:])
    bugs = sum("with a bug" in a.stderr for a in agents)
    return (
        f"{mode} N={n}: started in {spawned:.1f} s; {outcome}; CPU {used:.0f} s "
        f"({used / n:.2f} s a pod); members whose session was cut: {cut}; with bugs: {bugs}"
    )


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else "sidecar"
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 300
    print(run(mode, count, int(sys.argv[3]) if len(sys.argv) > 3 else 600), flush=True)
