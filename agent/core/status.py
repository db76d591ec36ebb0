"""What a waiting agent says about its peers: why each one is missing, the progress line, the
timeout's message, and the outcome handed to the workload.

Pure: it reads the cores' state and changes nothing, so every line a user reads is tested
without a network.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from agent.config.model import Config
from agent.core.causes import Cause, Failure
from agent.core.effects import Released
from agent.core.hints import hints_for, nobody_listens
from agent.core.log import LogKind, LogLine
from agent.core.outcome import Outcome, PeerInfo, ReleaseKind
from agent.core.reach import Reach
from agent.core.roles import Coordinator, Member
from agent.core.sweep import Sweep
from agent.errors import BarrierTimeout

__all__ = ["Status", "released_event"]


@dataclass(frozen=True)
class Status:
    config: Config
    reach: Reach
    sweep: Sweep | None
    side: Coordinator | Member | None

    def reason(self, index: int) -> str:
        """Why peer ``index`` is not reached yet."""
        if self.sweep is None or self.reach.is_scheduled(index):
            peer = self.reach.peers[index]
            return _with_earlier(peer.failure, peer.telling)
        if self.sweep.failure is not None:  # the Service name itself does not resolve
            return self.sweep.failure.reason
        listed = len(self.sweep.published)
        unanswered = [
            (a, f) for a, f in self.sweep.unidentified.items() if a in self.sweep.published
        ]
        if not unanswered:
            return f"not in DNS: not among the {listed} addresses of the Service"
        # Listed addresses that did not answer as a peer: the missing one may be any of them.
        shown = ", ".join(
            f"{a} ({_with_earlier(f, self.sweep.telling.get(a))})" for a, f in unanswered[:3]
        )
        return (
            f"not found at the {listed} addresses of the Service; not answering as a peer: {shown}"
        )

    def cause(self, index: int) -> Cause | None:
        """Why peer ``index`` is not reached yet, typed (None once it is); a telling cause seen
        earlier (another token) wins over the vaguer one that followed (nobody listens)."""
        if self.reach.peers[index].reached:
            return None
        if self.sweep is None or self.reach.is_scheduled(index):
            peer = self.reach.peers[index]
            return (peer.telling or peer.failure).cause
        if self.sweep.failure is not None:
            return self.sweep.failure.cause
        # Listed addresses that did not answer as a peer, all for one reason: that reason.
        telling = self.sweep.telling
        causes = {
            (telling.get(a) or f).cause
            for a, f in self.sweep.unidentified.items()
            if a in self.sweep.published
        }
        cause = causes.pop() if len(causes) == 1 else None
        return cause or Cause.NOT_LISTED

    def missing(self) -> list[tuple[int, str]]:
        """The peers not reached and why; once all are, what the barrier still waits for."""
        out = [(p.index, self.reason(p.index)) for p in self.reach.missing()]
        if not out and isinstance(self.side, Coordinator):
            out = [(i, f"barrier: {why}") for i, why in self.side.waiting_for()]
        elif not out and isinstance(self.side, Member):
            out = [(0, f"barrier: {self.side.last_problem}")]
        return out

    def progress(self, elapsed: float) -> LogLine:
        missing = self.missing()
        names = ", ".join(
            f"{self.config.topology.hostname(i)} ({why})" for i, why in missing[:8]
        ) + (f", … {len(missing) - 8} more" if len(missing) > 8 else "")
        peers = self.config.topology.peers
        reached = peers - len(self.reach.missing())
        causes = [self.cause(p.index) for p in self.reach.missing()]
        hint = nobody_listens(causes, self.config.port)
        return LogLine(
            LogKind.PROGRESS,
            f"waiting {elapsed:.0f}s: {reached}/{peers} peers reached; missing: {names}"
            + (f"; hint: {hint}" if hint else ""),
            {"reached": reached, "missing": [i for i, _ in missing]},
        )

    def timeout(self) -> BarrierTimeout:
        missing = self.missing()
        lines = [f"{self.config.topology.display(i)}: {why}" for i, why in missing]
        reasons = [self.reason(p.index) if not p.reached else "" for p in self.reach.peers]
        causes = [self.cause(p.index) for p in self.reach.peers]
        t, resolv, port = self.config.topology, self.config.pod_resolv, self.config.port
        return BarrierTimeout(
            f"timed out after {self.config.timeout:g}s; {len(missing)} peer(s) missing",
            missing=lines,
            hints=hints_for(t, resolv, reasons, causes, port=port),
        )

    def outcome(self, elapsed: float, addresses: dict[int, tuple[str, ...]]) -> Outcome:
        t = self.config.topology
        peers = tuple(
            PeerInfo(i, t.hostname(i), t.display(i), addresses.get(i, ())) for i in t.indices
        )
        verdict = self.side.verdict if self.side is not None else None
        how = verdict.kind if isinstance(verdict, Released) else ReleaseKind.NO_BARRIER
        return Outcome(how, elapsed, peers)


def _with_earlier(failure: Failure, telling: Failure | None) -> str:
    if telling is None or telling.reason == failure.reason:
        return failure.reason
    return f"{failure.reason}; earlier: {telling.reason}"


def released_event(released: Released, elapsed: float, counts: Mapping[str, int]) -> LogLine:
    """The release line, with what the agent did to get there (lookups, probes, sessions)."""
    done = ", ".join(f"{n} {what.replace('_', ' ')}" for what, n in sorted(counts.items()))
    return LogLine(
        LogKind.RELEASED,
        f"barrier released: {released.kind} after {elapsed:.3f}s ({done})",
        {"elapsed": round(elapsed, 3), **counts},
    )
