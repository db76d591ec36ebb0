"""The cut-answer case with ``sidecar`` agents: N real sidecars on loopback against the DNS stub of
``bench.cutanswer`` (every pod's name answered, the Service's answer cut), then a named barrier
in every pod, then the end.

Three phases, each timed as a cluster would see it:

* **start**: each sidecar's ``/readyz`` probed as kubelet's startupProbe probes it (every
  ``PERIOD`` seconds until it answers 200, then no more); the figure is the last 200 after the
  last launch (and the last ``serving`` log line, the moment it turned 200);
* **named**: once every pod is ready, every pod runs ``peer-agent barrier NAME`` against its own
  sidecar (one client process a pod, launched as fast as they can be); the figure is from the
  last launch to the last client's exit 0;
* **exit**: a sidecar has no exit barrier (``docs/modes.md``): Kubernetes stops it with SIGTERM
  once the main containers have ended, and it exits 0. Every sidecar gets SIGTERM at once; the
  figure is the last exit.

DNS queries are counted per pod at the end of each phase (a named barrier is one more instance
of the barrier, which looks its peers up again). ``python -m bench.cutanswer --mode sidecar N
CUT TIMEOUT_S``.
"""

from __future__ import annotations

import http.client
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import ROOT, AgentProc, free_port, raise_nofile
from bench.cutanswer import compiled, cut_dns, kinds, launch, save_logs, udp_dropped
from bench.procmem import MemoryWatch

__all__ = ["NAME", "sidecar_cut"]

NAME = "dataset"  # the named barrier every pod passes
PERIOD = 1.0  # kubelet's probe period (periodSeconds: 1, the shortest it takes)
PROBE_TIMEOUT = 1.0  # its timeoutSeconds' default


@dataclass
class Prober:
    """kubelet's startupProbe for every sidecar launched: ``GET /readyz`` each ``PERIOD`` until
    200 (``ready``: when the first 200 came), from one thread."""

    addresses: list[str]
    port: int
    ready: dict[int, float] = field(default_factory=dict)
    probes: int = 0
    _launched: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def launched(self, count: int) -> None:
        self._launched = count

    def _probe(self, i: int) -> bool:
        conn = http.client.HTTPConnection(self.addresses[i], self.port, timeout=PROBE_TIMEOUT)
        self.probes += 1
        try:
            conn.request("GET", "/readyz")
            return conn.getresponse().status == 200
        except (OSError, http.client.HTTPException):
            return False
        finally:
            conn.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            began = time.monotonic()
            for i in range(self._launched):
                if i not in self.ready and self._probe(i):
                    self.ready[i] = time.monotonic()
            self._stop.wait(max(0.0, PERIOD - (time.monotonic() - began)))

    def until_all(self, timeout: float) -> bool:
        """Probe until every pod is ready (True) or ``timeout`` passes."""
        thread = threading.Thread(target=self._run, daemon=True)
        thread.start()
        deadline = time.monotonic() + timeout
        while len(self.ready) < len(self.addresses) and time.monotonic() < deadline:
            time.sleep(0.2)
        self._stop.set()
        thread.join()
        return len(self.ready) == len(self.addresses)


def _client(address: str, port: int, timeout: float) -> subprocess.Popen[bytes]:
    """``peer-agent barrier NAME`` in the pod at ``address``: a client of its own sidecar."""
    where = ("--listen", address, "--health-port", str(port), "--timeout", f"{timeout:g}s")
    argv = [sys.executable, "-m", "agent", "barrier", NAME, *where]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)


def _reap(proc: subprocess.Popen[bytes], deadline: float) -> tuple[int, float, float]:
    """(exit code, when it exited, CPU seconds), killed at ``deadline``."""
    while time.monotonic() < deadline:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        time.sleep(0.01)
    else:
        # os.kill, not proc.kill(): Popen's polls first, reaping a client that has just exited,
        # and wait4 then lost its status and CPU (ECHILD ended the 300-pod run)
        os.kill(proc.pid, signal.SIGKILL)
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = code = os.waitstatus_to_exitcode(status)
    return code, time.monotonic(), usage.ru_utime + usage.ru_stime


def _named(addresses: list[str], port: int, timeout: float) -> dict[str, Any]:
    """Every pod's client of barrier ``NAME``: the release after the last launch, exit codes."""
    began = time.monotonic()
    clients = [_client(a, port, timeout) for a in addresses]
    asked = time.monotonic()
    reaped = [_reap(c, asked + timeout + 10) for c in clients]
    errors = [c.stderr.read().decode(errors="replace") if c.stderr else "" for c in clients]
    save_clients(errors)
    codes = [code for code, _, _ in reaped]
    cpus = [cpu for _, _, cpu in reaped]
    return {
        "named_released": codes.count(0),
        "named_exit_codes": dict(Counter(codes)),
        "named_last_launch_s": round(asked - began, 2),
        "named_release_after_last_launch_s": round(max(t for _, t, _ in reaped) - asked, 2),
        "named_client_cpu_s": round(sum(cpus) / len(cpus), 2),
        "named_note": next((e[-300:] for e, c in zip(errors, codes, strict=True) if c), ""),
    }


def save_clients(errors: list[str]) -> None:
    """Each pod's client's stderr as $BENCH_LOGS/client-INDEX.txt, when set."""
    if where := os.environ.get("BENCH_LOGS"):
        Path(where).mkdir(parents=True, exist_ok=True)
        for i, text in enumerate(errors):
            Path(where, f"client-{i}.txt").write_text(text)


def _last(agents: list[AgentProc], match: str, since: float) -> float | None:
    """When the last agent logged its first line whose event is ``match`` (None: one never did)."""
    times = [e[0] for a in agents if (e := a.event(match)) is not None]
    return round(max(times) - since, 2) if len(times) == len(agents) else None


def _per_pod(counts: Counter[int], peers: int, before: list[int] | None = None) -> dict[str, Any]:
    now = [counts[i] for i in range(peers)]
    got = [n - b for n, b in zip(now, before or [0] * peers, strict=True)]
    return {"mean": round(sum(got) / peers, 1), "max": max(got), "now": now}


def _stop(agents: list[AgentProc], timeout: float) -> dict[str, Any]:
    """SIGTERM to every sidecar at once, as Kubernetes stops native sidecars: when the last
    exited, and with which codes."""
    began = time.monotonic()
    for a in agents:
        if a.live:
            a.proc.send_signal(signal.SIGTERM)
    codes = [a.finish(max(0.0, began + timeout - time.monotonic())) for a in agents]
    return {"exit_codes": dict(Counter(codes)), "exit_s": round(time.monotonic() - began, 2)}


def sidecar_cut(
    peers: int = 32,
    cut: int = 32,
    timeout: float = 180.0,
    service_time: float = 0.0,
    extra: tuple[str, ...] = (),
    names_fail: bool = False,
) -> dict[str, Any]:
    """``peers`` real sidecars, the Service's answer cut at ``cut``: start (readiness), a named
    barrier, the end; DNS queries per pod in each phase, CPU and memory. ``extra``: more of
    the sidecars' options (``--reach sparse``: the graph of a Job over 256 pods, at fewer).
    ``names_fail``: from the start's end on, every pod's name answers SERVFAIL (the Service's
    answer stays cut): a named barrier must pass on what the start barrier proved."""
    raise_nofile(4 * peers + 1024)
    compiled()
    port, health = free_port(), free_port()
    dns, addresses = cut_dns(peers, cut, service_time)
    slack = f"{timeout + 5 * peers:g}s"  # as bench.cutanswer's: from each sidecar's start
    args = ("--port", str(port), "--health-port", str(health), "--timeout", slack, *extra)
    started, dropped = time.monotonic(), udp_dropped()
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    prober = Prober(addresses, health)
    out: dict[str, Any] = {"peers": peers, "cut": cut}
    with dns, MemoryWatch(every=max(1.0, peers / 500)) as watch:
        # kubelet probes each pod from its start: the prober runs while the launch does
        probing = threading.Thread(target=prober.until_all, args=(timeout + 5 * peers,))
        probing.start()
        agents = launch(dns, addresses, args, watch, "sidecar", prober.launched)
        launched = time.monotonic()
        try:
            probing.join()
            ok = len(prober.ready) == peers
            start_dns = _per_pod(dns.per_pod, peers)
            if names_fail:
                dns.fault("servfail")  # every name but the Service's (its own fault, the cut)
            if ok:
                out |= _named(addresses, health, timeout)
            named_dns = _per_pod(dns.per_pod, peers, start_dns["now"])
            out |= _stop(agents, 30)
        finally:
            for a in agents:
                a.kill()
            save_logs(agents, dns.per_name)
        dropped = udp_dropped() - dropped
        out["queries_by_kind"] = kinds(dns, peers)
    ended = resource.getrusage(resource.RUSAGE_SELF)
    cpus = [a.cpu_s or 0.0 for a in agents]
    ready = list(prober.ready.values())
    return {
        "ok": ok and out.get("named_released") == peers and out["exit_codes"] == {0: peers},
        **out,
        "ready": len(ready),
        "last_launch_s": round(launched - started, 2),
        "last_ready_after_last_launch_s": round(max(ready) - launched, 2) if ready else None,
        "last_serving_after_last_launch_s": _last(agents, "serving", launched),
        "readyz_probes": prober.probes,
        "start_queries_per_pod": {k: v for k, v in start_dns.items() if k != "now"},
        "named_queries_per_pod": {k: v for k, v in named_dns.items() if k != "now"},
        "queries_per_pod_mean": round(sum(dns.per_pod.values()) / peers, 1),
        "queries_per_pod_max": max(dns.per_pod[i] for i in range(peers)),
        "udp_dropped_unread": dropped,
        "pods_saying_dns_slow": sum(a.count("dns-slow") > 0 for a in agents),
        "cpu_s_per_pod": round(sum(cpus) / peers, 2),
        "cpu_s_per_pod_max": round(max(cpus), 2),
        "root_cpu_s": round(cpus[0], 2),
        "harness_cpu_s": round(ended.ru_utime + ended.ru_stime - cpu.ru_utime - cpu.ru_stime, 1),
        "real_s": round(time.monotonic() - started, 1),
        **watch.summary(),
    }
