"""Judge one barrier from its record: hang, early releases, wrong releases.

Only the agents' own JSON log lines and the pods' recorded history are used:

- **hang**: the Job did not complete within the bound, or a pod the soak did not kill ended
  with anything but exit 0 (an unplanned failure is as bad as a hang for the Job).
- **early release**: an agent's `released` stamp precedes some agent's `reached-all` stamp
  (every agent that is still there at the end, i.e. each index's final pod), or an agent was
  released while some final agent never reached all peers. All stamps come from one host clock.
- **wrong release**: an agent was released counting a peer that was not that peer's pod: the
  address it reached for index k belonged to no pod of index k at that moment, or belonged to a
  pod of index k that the soak had killed (and the Job controller replaced, at a new address)
  before this agent's release: it counted a stale address.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

from tests.soak.barrier import BarrierRun, Instance
from tests.soak.logs import events

# A reach is logged a moment after the hello that proves it; under load (16 agents starting on
# 2 cores) that moment can be long. Within this margin of the kill it still counts as the old pod.
REACH_SLACK = 0.5


@dataclass
class Verdict:
    hang: bool = False
    early: list[str] = field(default_factory=list)  # one line per early-released agent
    wrong: list[str] = field(default_factory=list)  # one line per wrongly released agent
    problems: list[str] = field(default_factory=list)  # why it is a hang, and other findings
    stale_counts: int = 0  # peers counted at a replaced pod's address, over all agents
    release_latency: float | None = None  # last agent start -> last release (s)

    @property
    def ok(self) -> bool:
        return not (self.hang or self.early or self.wrong)


def _first(evs: list[dict[str, Any]], kind: str) -> float | None:
    return next((e["t"] for e in evs if e.get("event") == kind), None)


def judge(run: BarrierRun) -> Verdict:
    verdict = Verdict()
    n = run.plan.peers
    finals = [i for i in run.instances if i.killed is None]
    logs = {i.name: events(i.log) for i in run.instances}
    _check_hang(run, finals, verdict)
    for inst in run.instances:
        if inst.killed is not None and _first(logs[inst.name], "released") is not None:
            verdict.problems.append(f"{inst.name} was killed after its release (soak error)")
    released = {i.name: t for i in finals if (t := _first(logs[i.name], "released")) is not None}
    reached_all = {i.name: _first(logs[i.name], "reached-all") for i in finals}
    covered = {i.index for i in finals} == set(range(n))
    never = [name for name, t in reached_all.items() if t is None]
    last_reached_all = max((t for t in reached_all.values() if t is not None), default=None)
    for inst in finals:
        at = released.get(inst.name)
        if at is None:
            continue
        if never or not covered:
            who = ", ".join(never) or "an index with no pod left"
            verdict.early.append(f"{inst.name} released at {at:.3f}; {who} never reached all")
        elif last_reached_all is not None and at < last_reached_all:
            verdict.early.append(
                f"{inst.name} released at {at:.3f}, before the last reached-all at "
                f"{last_reached_all:.3f} ({last_reached_all - at:.3f}s early)"
            )
        wrong = _wrong_counts(inst, logs[inst.name], at, run.instances, n)
        verdict.stale_counts += sum(1 for w in wrong if "killed" in w)
        if wrong:
            verdict.wrong.append(f"{inst.name} released at {at:.3f}: " + "; ".join(wrong))
    starts = [t for i in finals if (t := _first(logs[i.name], "start")) is not None]
    if starts and released:
        verdict.release_latency = max(released.values()) - max(starts)
    return verdict


def _check_hang(run: BarrierRun, finals: list[Instance], verdict: Verdict) -> None:
    if run.status != "Complete":
        verdict.hang = True
        verdict.problems.append(f"Job {run.status} after {run.elapsed:.1f}s")
    for inst in finals:
        if inst.exit_code != 0:
            verdict.hang = True
            verdict.problems.append(f"{inst.name} ({inst.phase}) exit code {inst.exit_code}")


def _wrong_counts(
    agent: Instance, evs: list[dict[str, Any]], released_at: float, pods: list[Instance], n: int
) -> list[str]:
    """Peers `agent` counted that were not (or no longer) that peer's pod when it left."""
    counted: dict[int, tuple[str, float]] = {}
    for e in evs:
        if e.get("event") == "reached" and isinstance(e.get("peer"), int) and e["t"] <= released_at:
            # The last reach counts: an agent that saw a peer restart reaches its new instance
            # again (a "restarted" event, then "reached" at the new address).
            counted[e["peer"]] = (str(e.get("address")), e["t"])
    out = []
    for peer, (address, t) in sorted(counted.items()):
        if not 0 <= peer < n:
            out.append(f"counted index {peer} of a {n}-pod Job")
            continue
        pod = _owner(pods, peer, address, t)
        if pod is None:
            out.append(f"peer {peer} at {address} at {t:.3f}: no pod {peer} had that address")
        elif pod.killed is not None and pod.killed < released_at:
            now = [p for p in pods if p.index == peer and p.killed is None]
            then = f"; pod {peer} was then {now[-1].name} at {now[-1].address}" if now else ""
            out.append(
                f"peer {peer} at {address} ({pod.name}), killed at {pod.killed:.3f}, "
                f"{released_at - pod.killed:.3f}s before this release{then}"
            )
    return out


def _owner(pods: list[Instance], index: int, address: str, t: float) -> Instance | None:
    """The pod of `index` that had `address` at time t (killed pods: up to REACH_SLACK after)."""
    for pod in pods:
        if pod.index != index or pod.address != address or pod.started is None:
            continue
        gone = min(x for x in (pod.killed, pod.ended, float("inf")) if x is not None)
        if pod.started <= t and (t <= gone + REACH_SLACK):
            return pod
    return None


def summarize(runs: list[BarrierRun], verdicts: list[Verdict], wall: float) -> dict[str, Any]:
    times = [r.elapsed for r in runs]
    latencies = [v.release_latency for v in verdicts if v.release_latency is not None]

    def stat(xs: list[float], f: Any) -> float | None:
        return round(float(f(xs)), 3) if xs else None

    return {
        "barriers": len(runs),
        "pods": sum(r.plan.peers for r in runs),
        "pod_instances": sum(len(r.instances) for r in runs),
        "restarts": sum(r.restarts_done for r in runs),
        "restarts_skipped": sum(r.restarts_skipped for r in runs),
        "dns_faults": sum(
            (r.plan.publish_delay > 0) + (r.plan.negative_ttl > 0) + r.withdrawals_done
            for r in runs
        ),
        "dns_publish_delay_barriers": sum(r.plan.publish_delay > 0 for r in runs),
        "dns_negative_cache_barriers": sum(r.plan.negative_ttl > 0 for r in runs),
        "dns_withdrawals": sum(r.withdrawals_done for r in runs),
        "barriers_starved": sum(any(n.startswith("starved") for n in r.notes) for r in runs),
        "hangs": sum(v.hang for v in verdicts),
        "early_releases": sum(len(v.early) for v in verdicts),
        "wrong_releases": sum(len(v.wrong) for v in verdicts),
        "stale_peer_counts": sum(v.stale_counts for v in verdicts),
        "barriers_failed": sum(not v.ok for v in verdicts),
        "barrier_time_median_s": stat(times, statistics.median),
        "barrier_time_max_s": stat(times, max),
        "release_latency_median_s": stat(latencies, statistics.median),
        "release_latency_max_s": stat(latencies, max),
        "wall_s": round(wall, 1),
    }
