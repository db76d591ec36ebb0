"""What a waiting agent says: its log lines, why each missing peer is missing, the progress
line, the timeout's message, and the outcome handed to the workload.

Pure: it reads the cores' state and changes nothing, so every line a user reads is tested
without a network.
"""

from __future__ import annotations

from collections.abc import Mapping

from agent.config.model import Config
from agent.core.causes import Cause
from agent.core.discovery import Discovery
from agent.core.effects import Released
from agent.core.hints import hints_for, nobody_listens
from agent.core.log import LogKind, LogLine
from agent.core.outcome import Outcome, PeerInfo, ReleaseKind
from agent.core.reach import Reach
from agent.core.roles import Coordinator, Member
from agent.errors import BarrierTimeout
from agent.values import value

__all__ = ["Status", "released_line"]


@value
class Status:
    config: Config
    reach: Reach
    discovery: Discovery
    side: Coordinator | Member | None

    # --- lines as things happen ---------------------------------------------------------------
    def start_line(self) -> LogLine:
        config, t = self.config, self.config.topology
        who = f"pod {t.index} of {t.peers}" if t.index is not None else "not one of the peers"
        line = (
            f"topology {t.describe()}; {who}: peers {t.display(0)} … {t.display(t.peers - 1)}, "
            f"probe {config.probe}, barrier {config.barrier}, listening on port {config.port}"
        )
        return LogLine(LogKind.START, line)

    def reached_line(self, index: int, address: str, elapsed: float) -> LogLine:
        elapsed = round(elapsed, 3)
        probe = self.config.probe
        line = (
            f"reached {self.config.topology.display(index)} at {address} ({probe}) "
            f"after {elapsed:.3f}s"
        )
        fields = {"peer": index, "address": address, "probe": str(probe), "elapsed": elapsed}
        return LogLine(LogKind.REACHED, line, fields)

    def reached_all_line(self, elapsed: float) -> LogLine:
        line = f"reached all {self.config.topology.peers} peers"
        return LogLine(LogKind.REACHED_ALL, line, {"elapsed": round(elapsed, 3)})

    def restarted_line(self, index: int) -> LogLine:
        name = self.config.topology.display(index)
        line = f"{name} restarted: reaching its new instance before counting it again"
        return LogLine(LogKind.RESTARTED, line, {"peer": index})

    def refused_line(self, reason: str, unlogged: int) -> LogLine:
        """A refused contact, with how many more were refused since the last line."""
        more = f" (and {unlogged} more)" if unlogged else ""
        return LogLine(LogKind.CONTACT_REFUSED, f"refused a contact: {reason}{more}")

    # --- why peers are missing -----------------------------------------------------------------
    def reason(self, index: int) -> str:
        """Why peer ``index`` is not reached yet."""
        return self.discovery.why_missing(index).reason

    def cause(self, index: int) -> Cause | None:
        """Why peer ``index`` is not reached yet, typed (None once it is)."""
        if self.reach.peers[index].reached:
            return None
        return self.discovery.why_missing(index).cause

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


def released_line(released: Released, elapsed: float, counts: Mapping[str, int]) -> LogLine:
    """The release line, with what the agent did to get there (lookups, probes, sessions)."""
    done = ", ".join(f"{n} {what.replace('_', ' ')}" for what, n in sorted(counts.items()))
    return LogLine(
        LogKind.RELEASED,
        f"barrier released: {released.kind} after {elapsed:.3f}s ({done})",
        {"elapsed": round(elapsed, 3), **counts},
    )
