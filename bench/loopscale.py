"""A Job of N real agents on loopback over a real unbound, above every bound of the shared port:
``sidecar``, ``run --exit-barrier`` and ``wait`` at N = 300 (case ``n300``), and the sidecar
under a connection flood (case ``flood``).

Every pod is a process (``python -m agent``, this checkout) listening on an address of its own,
127.93.x.y, on one port; cluster DNS is unbound (``tests.harness.clusterdns``, as the integration
tests run it), listing every pod under its own name and the Service's. Pods 0 to N-2 start at
once, all published; once each has reached the N-2 others (they wait for the last pod only),
pod N-1 starts and is published, as a pod scheduled late. The figure is from its launch to the
last pass line, read off the agents' JSON logs as they come: ``released`` (``wait``), ``serving``
(a sidecar serving ``/readyz``), the exit barrier's ``released`` (``run --exit-barrier -- true``).

The flood: once pod 0 listens, a process at 127.94.0.1, an address DNS never lists, holds 1,000
silent connections open to pod 0's agent port and 100 to its health port, opening another each
time pod 0 closes one (``tests.support.junkflood``), until the case ends. A local waiter
(``peer-agent barrier``) asks pod 0's sidecar at once and waits through the whole start; once
every sidecar serves, every other pod's waiter asks. The case passes when every agent passes,
every waiter exits 0, and no member opened its session to the coordinator twice (a session cut
is redialled, and the release line counts sessions opened).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.config.model import Config
from agent.config.parse import load_config
from agent.core.groups import Tree
from agent.core.targets import Targets, reach_graph, targets_of
from agent.topology.podfiles import PodFacts
from bench.common import (
    JOB,
    NAMESPACE,
    ROOT,
    SERVICE,
    SERVICE_FQDN,
    ZONE,
    AgentProc,
    fqdn,
    free_port,
    raise_nofile,
)
from tests.harness.clusterdns import ClusterDNS

__all__ = ["FLOOD_MODES", "LABELS", "MODES", "scale"]

Sample = dict[str, Any]
Record = dict[str, Any]
MODES = ("sidecar", "exit", "wait")
FLOOD_MODES = ("sidecar", "exit")
LABELS = {"sidecar": "sidecar", "exit": "run --exit-barrier", "wait": "wait"}
AGENT_NET = 93  # 127.93.x.y: the pods
OUTSIDER = "127.94.0.1"  # the flood's address, never in DNS
FLOOD_AGENT_PORT, FLOOD_HEALTH_PORT = 1000, 100  # silent connections held open at once
NAMED = "after-start"  # the named barrier the local waiters pass
_COMMAND = {"sidecar": "sidecar", "exit": "run", "wait": "wait"}


def address(i: int) -> str:
    return f"127.{AGENT_NET}.{i // 250}.{i % 250 + 1}"


def _passes(mode: str) -> Callable[[Record], bool]:
    """Whether a log record is the line that says this pod passed, in ``mode``."""
    if mode == "sidecar":
        return lambda r: r.get("event") == "serving"
    if mode == "exit":
        return lambda r: r.get("event") == "released" and r.get("msg", "").startswith("exit ")
    return lambda r: r.get("event") == "released"


def _first(agent: AgentProc, match: Callable[[Record], bool]) -> tuple[float, Record] | None:
    with agent._cond:
        return next(((t, r) for t, r in agent.lines if match(r)), None)


def _reached(agent: AgentProc) -> set[int]:
    """The peers this agent has logged reaching (itself included)."""
    with agent._cond:
        return {r.get("peer", -1) for _, r in agent.lines if r.get("event") == "reached"}


def _config(n: int, i: int) -> Config:
    """Pod ``i``'s config as its agent works it out (``--reach`` and its degree from the
    environment, as the agents read them)."""
    flags = {"peers": str(n), "index": str(i), "hostname": f"{JOB}-{i}"}
    flags |= {"service": SERVICE, "namespace": NAMESPACE}
    return load_config("wait", flags, PodFacts(environ=dict(os.environ)))


def _plan(n: int) -> list[Targets]:
    """Whom each pod reaches."""
    out = []
    for i in range(n):
        targets = targets_of(_config(n, i))
        assert targets is not None
        out.append(targets)
    return out


def _children(n: int) -> list[int]:
    """The sessions each pod holds at its release: its uplink and, in the tree of coordinators
    (``agent.core.groups``), one per child; a pod that held more redialled one."""
    tree = Tree.of(n, flat=reach_graph(_config(n, 0)).complete)
    return [len(tree.children(i)) + (i != 0) for i in range(n)]


def _until(done: Callable[[], bool], timeout: float) -> bool:
    """Poll ``done`` (logs are read by threads; nothing else wakes us) until true or timeout."""
    deadline = time.monotonic() + timeout
    while not (ok := done()) and time.monotonic() < deadline:
        time.sleep(0.2)
    return ok


class Peaks:
    """Each agent's peak resident set (VmHWM), read every 0.25 s while it lives: an agent that
    exits when released (``wait``, ``run``) takes what grew in its last moments with it."""

    def __init__(self) -> None:
        self.kb: dict[int, int] = {}
        self.pids: list[int] = []
        self._stop = threading.Event()
        threading.Thread(target=self._watch, daemon=True).start()

    def read(self) -> None:
        for pid in list(self.pids):
            with contextlib.suppress(OSError, StopIteration, ValueError):
                status = Path(f"/proc/{pid}/status").read_text().splitlines()
                kb = int(next(x for x in status if x.startswith("VmHWM")).split()[1])
                self.kb[pid] = max(self.kb.get(pid, 0), kb)

    def _watch(self) -> None:
        while not self._stop.wait(0.25):
            self.read()

    def stop(self) -> None:
        self._stop.set()


def _cpu_s(pid: int) -> float | None:
    """User + system CPU so far, also of an exited child not reaped yet (a zombie keeps it)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _spawn(module: str, *argv: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", module, *argv],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _flood(port: int, count: int) -> subprocess.Popen[str]:
    """``count`` silent connections to pod 0's ``port`` from OUTSIDER, each closed one reopened."""
    return _spawn(
        "tests.support.junkflood",
        *("--target", f"{address(0)}:{port}", "--source", OUTSIDER, "--kind", "silent-hold"),
        *("--count", "10000000", "--concurrency", str(count), "--hold", "3600"),
        *("--deadline", "3600"),
    )


def _waiter(i: int, health_port: int, timeout: float) -> subprocess.Popen[str]:
    """``peer-agent barrier NAMED`` in pod ``i``: a client of its sidecar's health port."""
    where = ("--listen", address(i), "--health-port", str(health_port))
    return _spawn("agent", "barrier", NAMED, *where, "--timeout", f"{timeout:g}s")


class _Job:
    """The agents, the floods and the waiters of one run; ``close`` ends every one."""

    def __init__(self, mode: str, n: int, dns: ClusterDNS, timeout: float) -> None:
        self.mode, self.n, self.dns, self.timeout = mode, n, dns, timeout
        self.port = free_port()
        self.agents: list[AgentProc] = []
        self.floods: list[subprocess.Popen[str]] = []
        self.waiters: list[subprocess.Popen[str]] = []
        self.peaks = Peaks()

    def launch(self, i: int) -> AgentProc:
        args = ["--listen", address(i), "--port", str(self.port), "--timeout", f"{self.timeout:g}s"]
        if self.mode == "sidecar":
            args += ["--health-port", str(self.port + 1)]
        if self.mode == "exit":
            args += ["--exit-barrier", "--", "true"]
        server = f"{self.dns.address}:{self.dns.port}"
        agent = AgentProc.launch(_COMMAND[self.mode], i, self.n, server, *args)
        self.agents.append(agent)
        self.peaks.pids.append(agent.proc.pid)
        return agent

    def publish(self, upto: int) -> None:
        """Pods 0..upto-1 listed, each under its own name and all under the Service's."""
        listed = {fqdn(i): [f"A {address(i)}"] for i in range(upto)}
        self.dns.set_many({**listed, SERVICE_FQDN: [f"A {address(i)}" for i in range(upto)]})

    def flood(self) -> None:
        """The agent port's flood; a sidecar's health port gets one too."""
        self.floods = [_flood(self.port, FLOOD_AGENT_PORT)]
        if self.mode == "sidecar":
            self.floods.append(_flood(self.port + 1, FLOOD_HEALTH_PORT))

    def end_floods(self) -> list[Record]:
        """Stop the floods; their summaries (connections made, closed by pod 0, ...)."""
        summaries = []
        for flood in self.floods:
            flood.terminate()
            out, _ = flood.communicate(timeout=60)
            lines = out.strip().splitlines()
            summaries.append(json.loads(lines[-1]) if lines else {"note": "no summary"})
        return summaries

    def close(self) -> None:
        self.peaks.stop()
        for proc in (*self.floods, *self.waiters):
            if proc.poll() is None:
                proc.kill()
            proc.communicate()
        # SIGTERM to all at once: one by one, each would meet the others redialling the ones
        # already gone. os.kill, not Popen's: that polls, reaping the child and its rusage.
        for agent in self.agents:
            if agent.code is None:
                with contextlib.suppress(OSError):
                    os.kill(agent.proc.pid, signal.SIGTERM)
        for agent in self.agents:
            agent.finish(60)


def _sessions(agent: AgentProc) -> list[int]:
    """Sessions each barrier of this pod held at its release (``_children``)."""
    with agent._cond:
        return [r.get("sessions", 0) for _, r in agent.lines if r.get("event") == "released"]


def _bugs(agent: AgentProc) -> int:
    with agent._cond:
        return sum(
            r.get("event") in ("bug", "bugs") or "Traceback" in r.get("raw", "")
            for _, r in agent.lines
        )


def _figures(job: _Job, last_launch: float, passed: list[float | None]) -> Sample:
    """What the run measured once every agent has passed (or the bound did)."""
    n, agents = job.n, job.agents
    job.peaks.read()
    cpu = [c for a in agents if (c := _cpu_s(a.proc.pid)) is not None]
    rss = [job.peaks.kb[a.proc.pid] / 1024 for a in agents if a.proc.pid in job.peaks.kb]
    got = [t for t in passed if t is not None]
    sample: Sample = {"mode": job.mode, "n": n, "passed": len(got)}
    if len(got) == n:
        sample["launch_to_last_pass_s"] = round(max(got) - last_launch, 3)
    if cpu:
        sample |= {
            "cpu_per_pod_s": round(sum(cpu) / len(cpu), 3),
            "cpu_max_pod_s": round(max(cpu), 3),
            "cpu_coordinator_s": _cpu_s(agents[0].proc.pid),
        }
    if rss:
        sample |= {
            "rss_per_pod_mb": round(sorted(rss)[len(rss) // 2], 1),
            "rss_max_mb": round(max(rss), 1),
            "rss_coordinator_mb": round(rss[0], 1),
        }
    held = _children(len(agents))
    sample["redialled"] = sum(
        any(s > held[i] for s in _sessions(a)) for i, a in enumerate(agents) if i
    )
    sample["bugs"] = sum(_bugs(a) for a in agents)
    return sample


def scale(mode: str, n: int = 300, *, flood: bool = False, bound: float = 300.0) -> Sample:
    """One run; ``bound``: seconds for the first N-1 to reach each other, and again for the last
    pod's start to the last pass (two cores: 300 interpreters take minutes to mesh)."""
    raise_nofile(4 * n + 4096)
    with (
        tempfile.TemporaryDirectory(prefix="peer-agent-loopscale-") as work,
        ClusterDNS(Path(work) / "dns", zone=ZONE, listen="127.0.0.1") as dns,
    ):
        job = _Job(mode, n, dns, timeout=3 * bound)
        try:
            return _run(job, flood, bound) | {"dns_queries": dns.queries()}
        finally:
            job.close()


def _run(job: _Job, flood: bool, bound: float) -> Sample:
    n, started = job.n, time.monotonic()
    job.publish(n - 1)
    early = [job.launch(i) for i in range(n - 1)]
    if flood:
        if early[0].wait_event("start", bound) is None:
            return {"ok": False, "note": f"pod 0 did not start: {early[0].tail()}"}
        job.flood()
        if job.mode == "sidecar":
            job.waiters.append(_waiter(0, job.port + 1, 2 * bound))
    # each early pod has reached its targets but the last pod (every pod, when all-to-all)
    plan = [t.indices - {n - 1} for t in _plan(n)[: n - 1]]
    meshed = _until(lambda: all(_reached(a) >= plan[i] for i, a in enumerate(early)), bound)
    settle = time.monotonic() - started
    # (at the bound: how far they got; on two loaded cores 299 agents started at once have
    # not meshed in 30 minutes, their accept queues full of probes their senders gave up on)
    meshed_count = sum(_reached(a) >= plan[i] for i, a in enumerate(early))
    job.publish(n)
    last = job.launch(n - 1)
    last_launch = time.monotonic()
    passes = _passes(job.mode)
    _until(lambda: all(_first(a, passes) for a in job.agents), bound)
    passed = [hit[0] if (hit := _first(a, passes)) else None for a in job.agents]
    sample = _figures(job, last_launch, passed) | {"settle_s": round(settle, 1)}
    sample["meshed_before_the_last"] = meshed
    sample["meshed_early_pods"] = meshed_count
    if last.event("start") is not None:
        sample["last_cold_start_s"] = round(last.event("start")[0] - last_launch, 3)  # type: ignore[index]
    ok = sample["passed"] == n and sample["redialled"] == 0 and sample["bugs"] == 0
    if flood:
        sample |= _after_flood(job, bound)
        ok = ok and sample["waiters_passed"] == (n if job.mode == "sidecar" else 0)
    sample["ok"] = ok
    if not ok:
        sample["note"] = f"{sample['passed']}/{n} passed; pod 0: {job.agents[0].tail(3)}"
    return sample


def _after_flood(job: _Job, bound: float) -> Sample:
    """Every other pod's waiter asks; all must pass, pod 0's included (it waited since the
    start, its sidecar's health port flooded). Then the floods stop and report."""
    if job.mode == "sidecar":
        job.waiters += [_waiter(i, job.port + 1, bound) for i in range(1, job.n)]
    codes = []
    for waiter in job.waiters:
        try:
            waiter.communicate(timeout=bound)
        except subprocess.TimeoutExpired:
            waiter.kill()
            waiter.communicate()
        codes.append(waiter.returncode)
    port_flood, *health = job.end_floods()
    with job.agents[0]._cond:
        said = sum("in their handshake" in r.get("msg", "") for _, r in job.agents[0].lines)
    return {
        "waiters_passed": codes.count(0),
        "pod0_waiter_code": codes[0] if codes else None,
        "flood_made": port_flood.get("made"),
        "flood_closed_by_pod0": port_flood.get("closed-by-server"),
        "health_flood_made": health[0].get("made") if health else None,
        "drop_lines": said,
    }


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.loopscale MODE [N] [--flood]``: one run, its sample as JSON."""
    args = list(sys.argv[1:] if argv is None else argv)
    flood = "--flood" in args
    args = [a for a in args if a != "--flood"]
    mode = args[0] if args else "sidecar"
    sample = scale(mode, int(args[1]) if len(args) > 1 else 300, flood=flood)
    print(json.dumps(sample, indent=1))
    return 0 if sample.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main())
