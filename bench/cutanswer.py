"""The cut-answer case: real agents on loopback against a DNS server that answers every pod's name
but cuts the Service's answer, as a Service of more pods than one DNS message holds is cut.

Over UDP the Service's answer has TC set and no records; over TCP it lists the first ``cut``
addresses, TC set. Every pod is then found by its own name but for the ``cut`` listed, so the
whole Job asks cluster DNS about N x (N - cut) names at once: what pushes a DNS server that falls
behind into collapse unless the agents pace and back off. Each pod asks on a port of its own
(``tests.support.podsdns``), one thread serving them all, so the queries are counted per pod.

``python -m bench.cutanswer [--mode sidecar] [N] [CUT] [TIMEOUT_S] [SERVICE_MS]`` runs it once
and prints the sample (``SERVICE_MS``: the server's CPU per answer, 0 by default: see
``CutServiceDNS``; ``--mode sidecar``: ``bench.sidecarcut``, sidecars and a named barrier).
TIMEOUT_S counts from the last launch; launches are paced (``STARTING``); each agent's peak
RSS, PSS and USS and the machine's MemAvailable are sampled (``bench.procmem``);
``BENCH_LOGS=DIR`` keeps every agent's log there.
"""

from __future__ import annotations

import compileall
import json
import os
import resource
import sys
import time
from collections import Counter, deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import JOB, ROOT, SERVICE_FQDN, AgentProc, fqdn, free_port, raise_nofile
from bench.procmem import MemoryWatch
from tests.support.podsdns import CutServiceDNS

__all__ = [
    "compiled",
    "cut_answer",
    "cut_dns",
    "kinds",
    "launch",
    "pod_address",
    "save_logs",
    "udp_dropped",
]

NET = 93  # 127.93.0.0/16: this case's agents
STARTING = 3  # agents launched and not yet up (their start line) at any moment


def pod_address(index: int) -> str:
    """Pod ``index``'s loopback address: 127.93.0.1 on, counted through the /16 (so 255 pods
    and more stay valid addresses; up to 65,534 pods)."""
    n = index + 1
    return f"127.{NET}.{n >> 8}.{n & 255}"


def udp_dropped() -> int:
    """Datagrams the kernel dropped for a full receive buffer, machine-wide: queries sent to
    a server too far behind to read them (no server counts those)."""
    lines = [x.split() for x in Path("/proc/net/snmp").read_text().splitlines() if x[:4] == "Udp:"]
    return int(dict(zip(lines[0], lines[1], strict=True))["RcvbufErrors"])


def kinds(dns: CutServiceDNS, peers: int, of: int | None = None) -> dict[str, int]:
    """Who asked what: each query read, by what its name is to the pod that asked it (``of``:
    that pod's alone)."""
    index = {fqdn(i).lower(): i for i in range(peers)}
    found: Counter[str] = Counter()
    for (pod, name), n in dns.per_name.items():
        if of is not None and pod != of:
            continue
        i = index.get(name.lower())
        if i is None:
            kind = "service" if name.lower() == SERVICE_FQDN.lower() else "other"
        else:
            ring = {pod: "own", 0: "coordinator", (pod + 1) % peers: "ring"}
            kind = ring.get(i, "fallback")
        found[kind] += n
    return dict(found)


def compiled() -> None:
    """The agent's bytecode written beside it, as ``pip install --compile`` writes it in the
    image: with PYTHONDONTWRITEBYTECODE set (as here) every agent would compile its ~110 modules
    afresh, twice the CPU of a start that reads them."""
    compileall.compile_dir(ROOT / "agent", quiet=1)


def save_logs(agents: list[AgentProc], asked: Counter[tuple[int, str]]) -> None:
    """Each agent's log lines as JSON lines in $BENCH_LOGS/agent-INDEX.jsonl, when set: the
    evidence for why a pod was not released; and every query the stub read by pod and name
    (``dns.json``: [pod, name, count] rows), to find which pod asked what most."""
    where = os.environ.get("BENCH_LOGS")
    if not where:
        return
    Path(where).mkdir(parents=True, exist_ok=True)
    rows = sorted([pod, name, n] for (pod, name), n in asked.items())
    Path(where, "dns.json").write_text(json.dumps(rows) + "\n")
    for i, a in enumerate(agents):
        lines = [json.dumps({"at": round(at, 3), **r}, default=str) for at, r in a.lines]
        Path(where, f"agent-{i}.jsonl").write_text("\n".join(lines) + "\n")


def cut_dns(peers: int, cut: int, service_time: float = 0.0) -> tuple[CutServiceDNS, list[str]]:
    """The stub (not started yet) and the pods' addresses: every pod's name answered, the
    Service's cut at ``cut`` addresses."""
    addresses = [pod_address(i) for i in range(peers)]
    dns = CutServiceDNS(peers, SERVICE_FQDN, tuple(addresses[:cut]), service_time=service_time)
    for i, address in enumerate(addresses):
        dns.set(fqdn(i), address)
    dns.set(SERVICE_FQDN, *addresses)
    return dns, addresses


def launch(
    dns: CutServiceDNS,
    addresses: list[str],
    args: tuple[str, ...],
    watch: MemoryWatch,
    command: str = "wait",
    launched: Callable[[int], object] = lambda count: None,
) -> list[AgentProc]:
    """One agent a pod, never more than ``STARTING`` between its launch and its start line: a
    start is ~0.1 s of CPU, and a thousand at once would starve the agents already up (their
    probes and DNS answers read late) and the DNS server alike."""
    agents: list[AgentProc] = []
    starting: deque[AgentProc] = deque()
    try:
        for i, address in enumerate(addresses):
            while len(starting) >= STARTING:
                starting.popleft().wait_event("start", 60)
            extra = ("--listen", address, *args)
            agents.append(AgentProc.launch(command, i, len(addresses), dns.server_for(i), *extra))
            watch.add(i, agents[-1])
            launched(len(agents))
            starting.append(agents[-1])
    except BaseException:
        for a in agents:
            a.kill()
        raise
    return agents


def cut_answer(
    peers: int = 128, cut: int = 32, timeout: float = 120.0, service_time: float = 0.0
) -> dict[str, Any]:
    """``peers`` real ``wait`` agents, the Service's answer cut at ``cut`` addresses: how many
    release within ``timeout``, how long the last took, DNS queries per pod, CPU and memory."""
    raise_nofile(4 * peers + 1024)
    compiled()
    port = free_port()
    dns, addresses = cut_dns(peers, cut, service_time)
    # The bench's bound counts from the last launch; an agent's --timeout from its own start,
    # so with a slow launch the first pods would give up before the last is up: five seconds
    # of slack a pod keep that from deciding (launches ran at 1-20 a second on two cores, but
    # at 300 pods on a loaded machine at 0.45-0.65 a second: with a second a pod, the first
    # pods timed out before the last was launched, and none was released).
    args = ("--port", str(port), "--timeout", f"{timeout + 5 * peers:g}s")
    started, dropped = time.monotonic(), udp_dropped()
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    # a sweep of 1,000 rollups is ~0.1 s of CPU: every 2 s at that size
    with dns, MemoryWatch(every=max(1.0, peers / 500)) as watch:
        agents = launch(dns, addresses, args, watch)
        launched = time.monotonic()
        try:
            deadline = launched + timeout
            codes = [a.finish(max(0.0, deadline - time.monotonic())) for a in agents]
        finally:
            for a in agents:
                a.kill()
        per_pod = [dns.per_pod[i] for i in range(peers)]
        dropped = udp_dropped() - dropped
        by_name = sum(q.name != SERVICE_FQDN for q in dns.log)
        by_kind = kinds(dns, peers)
        worst = max(range(peers), key=lambda i: per_pod[i])
        names = Counter({n: k for (pod, n), k in dns.per_name.items() if pod == worst})
        worst_kinds = kinds(dns, peers, of=worst)
    save_logs(agents, dns.per_name)
    ended = resource.getrusage(resource.RUSAGE_SELF)
    harness = ended.ru_utime + ended.ru_stime - cpu.ru_utime - cpu.ru_stime
    released = [a.event("released") for a in agents]
    done = [r[0] for r in released if r is not None]
    # when each agent was up (its start line: past its imports, listening) and had reached all
    up = [s[0] for a in agents if (s := a.event("start")) is not None]
    meshed = [r[0] for a in agents if (r := a.event("reached-all")) is not None]
    slow = [a.count("dns-slow") for a in agents]
    cpus = [a.cpu_s or 0.0 for a in agents]
    ok = codes == [0] * peers
    return {
        "ok": ok,
        "note": "" if ok else f"{codes.count(0)} of {peers} released; {agents[-1].tail(2)}",
        "job": JOB,
        "peers": peers,
        "cut": cut,
        "service_time_ms": service_time * 1000,
        "released": codes.count(0),
        "exit_codes": dict(Counter(codes)),
        "last_launch_s": round(launched - started, 2),
        "last_release_s": round(max(done) - started, 2) if done else None,
        "release_after_last_launch_s": round(max(done) - launched, 2) if done else None,
        "last_up_s": round(max(up) - started, 2) if up else None,
        "last_reached_all_s": round(max(meshed) - started, 2) if meshed else None,
        "real_s": round(time.monotonic() - started, 1),
        "queries_per_pod_mean": round(sum(per_pod) / peers, 1),
        "queries_per_pod_max": max(per_pod),
        "pods_over_32_queries": sum(n > 32 for n in per_pod),
        "root_queries": per_pod[0],
        "queries_total": sum(per_pod),
        "queries_by_name": by_name,
        "udp_dropped_unread": dropped,
        "service_queries_per_pod": round((sum(per_pod) - by_name) / peers, 1),
        "queries_by_kind": by_kind,
        "worst_pod": worst,
        "worst_pod_names": dict(names.most_common(8)),
        "worst_pod_kinds": worst_kinds,
        "pods_saying_dns_slow": sum(n > 0 for n in slow),
        "cpu_s_per_pod": round(sum(cpus) / peers, 2),
        "cpu_s_per_pod_max": round(max(cpus), 2),
        "root_cpu_s": round(cpus[0], 2),
        "harness_cpu_s": round(harness, 1),
        **watch.summary(),
    }


if __name__ == "__main__":
    argv = sys.argv[1:]
    mode = "wait"
    if argv[:1] == ["--mode"]:
        mode, argv = argv[1], argv[2:]
    given = [float(a) for a in argv[:4]]
    n, c, t, ms = given + [128, 32, 120, 0][len(given) :]
    if mode == "sidecar":
        from bench.sidecarcut import sidecar_cut

        extra = tuple(os.environ.get("BENCH_AGENT_ARGS", "").split())
        print(json.dumps(sidecar_cut(int(n), int(c), t, ms / 1000, extra)))
    else:
        print(json.dumps(cut_answer(int(n), int(c), t, ms / 1000)))
