"""The cases that need no cluster: footprint, sweep and coordinator scale, all on loopback.

Each function runs its case once and returns one sample: a dict of figures (seconds, MB) plus
``ok`` and a ``note`` saying what went wrong when it did.
"""

from __future__ import annotations

import os
import resource
import time
from pathlib import Path
from typing import Any

from agent.io.limits import fds_needed
from bench.common import (
    JOB,
    SERVICE_FQDN,
    AgentProc,
    PeerSim,
    fqdn,
    free_port,
    raise_nofile,
)
from bench.dnsstub import BenchDNS
from bench.peersim import address_of

__all__ = ["coordinator_scale", "footprint", "idle", "release_loopback", "sweep"]

Sample = dict[str, Any]
AGENT_NET = 90  # 127.90.0.0/16: the footprint case's agents
SIM_NET = 100  # 127.100.0.0 and up: simulated peers (one /16 per 65,536 of them)
SIM_SPLIT = 5000  # members per simulator process


def footprint(peers: int = 3) -> Sample:
    """``peers`` real agents through a full barrier on loopback; the coordinator's and a
    member's peak RSS (VmHWM, see AgentProc.watch_rss). (Cold start: bench.coldstart.)"""
    port = free_port()
    addresses = [f"127.{AGENT_NET}.0.{i + 1}" for i in range(peers)]
    zone = {fqdn(i): [a] for i, a in enumerate(addresses)}
    zone[SERVICE_FQDN] = addresses
    agents: list[AgentProc] = []
    with BenchDNS(zone) as dns:
        try:
            for i in range(peers):
                args = ("--listen", addresses[i], "--port", str(port), "--timeout", "30s")
                agents.append(AgentProc.launch("wait", i, peers, dns.server, *args))
                agents[-1].watch_rss()
                time.sleep(0.3)  # apart, as the figures recorded before were measured
            codes = [a.finish(40) for a in agents]
        finally:
            for a in agents:
                a.kill()
    ok = codes == [0] * peers
    rss = [a.rss_kb / 1024 for a in agents if a.rss_kb]
    return {
        "ok": ok,
        "note": "" if ok else f"exit codes {codes}; {agents[0].tail()}",
        "rss_coordinator_mb": round(rss[0], 1) if rss else None,
        "rss_member_mb": round(max(rss[1:]), 1) if len(rss) > 1 else None,
    }


def sweep(peers: int = 4096, timeout: float = 30.0) -> Sample:
    """One agent (index 0, ``--barrier none``) probing ``peers`` simulated peers found by one DNS
    query for the Service (and by name for those a cut-short answer leaves out): time from its
    start to "reached all"."""
    raise_nofile(peers + 4096)
    port = free_port()
    me = address_of(0, SIM_NET)
    everyone = [address_of(i, SIM_NET) for i in range(peers + 1)]
    # Every pod has its own name, as in a cluster: over 4,090 peers the Service's answer is cut
    # short and the agent asks for the rest by name.
    zone = {fqdn(i): [a] for i, a in enumerate(everyone)}
    zone[SERVICE_FQDN] = everyone
    sim = PeerSim(
        {
            "job": JOB,
            "peers": peers + 1,
            "port": port,
            "net": SIM_NET,
            "first": 1,
            "last": peers,
        }
    )
    try:
        if sim.read("ready") is None:
            return {"ok": False, "note": "the peer simulator did not start"}
        with BenchDNS(zone) as dns:
            agent = AgentProc.launch(
                "wait",
                0,
                peers + 1,
                dns.server,
                "--listen",
                me,
                "--port",
                str(port),
                "--barrier",
                "none",
                "--timeout",
                f"{timeout:g}s",
            )
            try:
                code = agent.finish(timeout + 10)
            finally:
                agent.kill()
            truncated = sum(q.truncated for q in dns.log if q.name == SERVICE_FQDN)
            service_queries = sum(q.name == SERVICE_FQDN for q in dns.log)
    finally:
        sim.stop()
    start, done = agent.event("start"), agent.event("reached-all")
    ok = code == 0 and done is not None
    sample: Sample = {
        "ok": ok,
        "note": "" if ok else f"exit {code}: {agent.tail(2)}",
        "service_queries": service_queries,
        "truncated_answers": truncated,
        "rss_mb": round((agent.rss_kb or 0) / 1024, 1),
        "cpu_s": round(agent.cpu_s or 0, 2),
    }
    if done is not None:
        sample["sweep_s"] = round(done[1]["elapsed"], 3)  # the agent's own clock, from its start
        sample["launch_to_all_s"] = round(done[0] - agent.started, 3)
        if start is not None:
            sample["start_to_all_s"] = round(done[0] - start[0], 3)
    return sample


def most_members(want: int) -> int:
    """The agent checks nofile against ``limits.fds_needed(peers)`` up front and this process
    cannot raise its hard limit (no CAP_SYS_RESOURCE here): the most members it will accept."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard == resource.RLIM_INFINITY:
        return want
    peers = want + 1
    while peers > 2 and fds_needed(peers) > hard:
        peers -= 1
    return peers - 1


def coordinator_scale(members: int = 10_000, timeout: float = 120.0) -> Sample:
    """One real coordinator (index 0 of ``members + 1``) and ``members`` simulated members.

    The members open their sessions first; each hello wakes the coordinator to probe that member
    (push). The Service's DNS answer for 10,001 addresses exceeds any DNS message and comes back
    truncated; the members it leaves out are asked for by name. Once the coordinator has reached
    everyone, all members send Arrive at once; the figure is last Arrive sent -> last Release
    received.
    """
    asked, members = members, most_members(members)
    raise_nofile(resource.getrlimit(resource.RLIMIT_NOFILE)[1])
    port = free_port()
    me = address_of(0, SIM_NET)
    everyone = [address_of(i, SIM_NET) for i in range(members + 1)]
    # Every pod has its own name too, as in a cluster: the members a cut-short Service answer
    # leaves out are found by name (or by their push).
    zone = {fqdn(i): [a] for i, a in enumerate(everyone)}
    zone[SERVICE_FQDN] = everyone
    # Members in processes of at most SIM_SPLIT: two descriptors each (listener, session).
    bounds = [(a, min(a + SIM_SPLIT - 1, members)) for a in range(1, members + 1, SIM_SPLIT)]
    with BenchDNS(zone) as dns:
        agent = AgentProc.launch(
            "wait",
            0,
            members + 1,
            dns.server,
            "--listen",
            me,
            "--port",
            str(port),
            "--timeout",
            f"{timeout:g}s",
        )
        sims = [
            PeerSim(
                {
                    "job": JOB,
                    "peers": members + 1,
                    "port": port,
                    "net": SIM_NET,
                    "first": first,
                    "last": last,
                    "coordinator": me,
                }
            )
            for first, last in bounds
        ]
        results: list[dict[str, Any]] = []
        reached = None
        try:
            if any(sim.read("ready") is None for sim in sims):
                return {"ok": False, "note": "a peer simulator did not start"}
            reached = agent.wait_event("reached-all", timeout)
            connected = reached and all(sim.read("connected") for sim in sims)
            if connected:
                for sim in sims:
                    sim.tell("go")
                results = [r for sim in sims if (r := sim.read("last_release"))]
            code = agent.finish(30)
        finally:
            for sim in sims:
                sim.stop()
            agent.kill()
    released = sum(r.get("released", 0) for r in results)
    ok = code == 0 and released == members
    note = "" if ok else f"exit {code}, {released} released: {agent.tail(2)}"
    if members < asked:
        note = (
            f"{members} members, not {asked}: the agent needs nofile >= "
            f"{fds_needed(asked + 1)} for {asked + 1} peers; the hard limit here is "
            f"{resource.getrlimit(resource.RLIMIT_NOFILE)[1]}. {note}"
        ).strip()
    sample: Sample = {
        "ok": ok,
        "note": note,
        "members": members,
        "rss_mb": round((agent.rss_kb or 0) / 1024, 1),
        "cpu_s": round(agent.cpu_s or 0, 2),
    }
    if reached is not None:
        sample["reach_all_s"] = round(reached[1]["elapsed"], 3)
    arrives = [r["last_arrive"] for r in results if r.get("last_arrive")]
    releases = [r["last_release"] for r in results if r.get("last_release")]
    firsts = [r["first_release"] for r in results if r.get("first_release")]
    if arrives and releases and len(results) == len(sims):
        sample["arrive_to_release_s"] = round(max(releases) - max(arrives), 3)
        sample["arrive_to_first_release_s"] = round(min(firsts) - max(arrives), 3)
    return sample


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a live process so far (from /proc, without reaping it)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def idle(peers: int = 64, settle: float = 60.0, window: float = 10.0) -> Sample:
    """What waiting costs: ``peers - 1`` real agents on loopback wait for one that never comes.
    Once all have reached each other, for ``window`` s: DNS queries per agent per second (and
    what share went over TCP), and CPU per agent per second. No cluster: nothing else counts."""
    port = free_port()
    up = peers - 1
    addresses = [f"127.{AGENT_NET + 1}.{i >> 8}.{(i & 255) + 1}" for i in range(up)]
    zone = {fqdn(i): [a] for i, a in enumerate(addresses)}
    zone[SERVICE_FQDN] = addresses
    agents: list[AgentProc] = []
    with BenchDNS(zone) as dns:
        try:
            for i, address in enumerate(addresses):
                agents.append(
                    AgentProc.launch(
                        "wait",
                        i,
                        peers,
                        dns.server,
                        "--listen",
                        address,
                        "--port",
                        str(port),
                        "--timeout",
                        f"{settle + window + 30:g}s",
                    )
                )
            # Waiting starts once every agent has reached all the others (on two loaded cores,
            # 63 interpreters take seconds to start); ``settle`` bounds that.
            deadline = time.monotonic() + settle
            while time.monotonic() < deadline and not all(
                a.count("reached") >= up - 1 for a in agents
            ):
                time.sleep(0.2)
            time.sleep(1.0)
            first, cpu0, t0 = (
                len(dns.log),
                [_cpu_seconds(a.proc.pid) for a in agents],
                time.monotonic(),
            )
            time.sleep(window)
            last, cpu1, t1 = (
                len(dns.log),
                [_cpu_seconds(a.proc.pid) for a in agents],
                time.monotonic(),
            )
        finally:
            for a in agents:
                a.kill()
        asked = dns.log[first:last]
    span = t1 - t0
    return {
        "ok": True,
        "note": "",
        "queries_per_agent_s": round(len(asked) / up / span, 2),
        "tcp_share": round(sum(q.transport == "tcp" for q in asked) / max(1, len(asked)), 2),
        "service_share": round(sum(q.name == SERVICE_FQDN for q in asked) / max(1, len(asked)), 2),
        "cpu_per_agent_ms_s": round(1000 * (sum(cpu1) - sum(cpu0)) / up / span, 1),
    }


def release_loopback(peers: int = 64, settle: float = 60.0) -> Sample:
    """Release latency without the cluster in a box: ``peers - 1`` agents wait on loopback; once
    they have all reached each other the last starts. From its ``start`` line (listening) to the
    last ``released`` line, as the launching process reads them off the agents' stderr."""
    port = free_port()
    addresses = [f"127.{AGENT_NET + 2}.{i >> 8}.{(i & 255) + 1}" for i in range(peers)]
    zone = {fqdn(i): [a] for i, a in enumerate(addresses)}
    zone[SERVICE_FQDN] = addresses
    agents: list[AgentProc] = []

    def launch(i: int) -> AgentProc:
        args = ("--listen", addresses[i], "--port", str(port), "--timeout", f"{settle + 30:g}s")
        return AgentProc.launch("wait", i, peers, dns.server, *args)

    with BenchDNS(zone) as dns:
        try:
            agents = [launch(i) for i in range(peers - 1)]
            deadline = time.monotonic() + settle
            while time.monotonic() < deadline and not all(
                a.count("reached") >= peers - 2 for a in agents
            ):
                time.sleep(0.2)
            time.sleep(1.0)  # into the steady pace of waiting
            agents.append(launch(peers - 1))
            codes = [a.finish(settle + 40) for a in agents]
        finally:
            for a in agents:
                a.kill()
    start = agents[-1].event("start")
    released = [a.event("released") for a in agents]
    ok = codes == [0] * peers and start is not None and None not in released
    sample: Sample = {"ok": ok, "note": "" if ok else f"exit codes {set(codes)}"}
    if ok and start is not None:
        sample["latency_s"] = round(max(r[0] for r in released if r) - start[0], 3)
    return sample
