"""What a waiting agent says: its log lines, why each missing peer is missing, the progress
line, the timeout's message, and the outcome handed to the workload.

Pure: it reads the cores' state and changes nothing, so every line a user reads is tested
without a network.
"""

from __future__ import annotations

from collections.abc import Mapping

from agent.config.model import Config
from agent.core.admission import Admission
from agent.core.asking import dns_hint, service_hint
from agent.core.causes import TELLING_CAUSES, Cause, Failure
from agent.core.discovery import Discovery
from agent.core.dnspace import Slowness
from agent.core.effects import Released
from agent.core.hints import hints_for, nobody_listens
from agent.core.log import LogKind, LogLevel, LogLine
from agent.core.outcome import Outcome, PeerList, ReleaseKind
from agent.core.reach import Reach
from agent.core.roles import Coordinator, Member
from agent.errors import BarrierTimeout, TokenMismatch
from agent.values import value

__all__ = ["Status", "released_line"]


@value
class Status:
    config: Config
    reach: Reach
    discovery: Discovery
    side: Coordinator | Member | None
    #: what waits to be vouched for (a member's session held is not "not connected")
    admission: Admission | None = None
    #: cluster DNS failing a share of the queries at the last look (``agent.core.asking``)
    dns_slow: Slowness | None = None
    #: why the last query of the Service's name failed (``Asking.service_failed``)
    service_failed: Failure | None = None

    # --- lines as things happen ---------------------------------------------------------------
    def start_line(self) -> LogLine:
        config, t = self.config, self.config.topology
        who = f"pod {t.index} of {t.peers}" if t.index is not None else "not one of the peers"
        line = (
            f"topology {t.describe()}; {who}: peers {t.display(0)} … {t.display(t.peers - 1)}, "
            f"probe {config.probe}, barrier {config.barrier}, listening on port {config.port}"
        )
        if sources := t.sources.describe():  # where each value came from
            line += f"; {sources}"
        return LogLine(LogKind.START, line, {"sources": t.sources.as_fields()})

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
        return LogLine(LogKind.RESTARTED, line, {"peer": index}, level=LogLevel.WARNING)

    def refused_line(self, reason: str, unlogged: int) -> LogLine:
        """A refused contact, with how many more were refused since the last line."""
        more = f" (and {unlogged} more)" if unlogged else ""
        line = f"refused a contact: {reason}{more}"
        return LogLine(LogKind.CONTACT_REFUSED, line, level=LogLevel.WARNING)

    # --- why peers are missing -----------------------------------------------------------------
    def reason(self, index: int) -> str:
        """Why peer ``index`` is not reached yet: first where a contact claiming it came from
        that DNS does not list (its agent is up, only not where DNS says), then discovery's
        why (the address DNS lists, where nothing answers as it), or, where that would say
        "not in DNS" (past a cut, the Service's answer is no proof of it), what its name gave
        the check of that contact."""
        why, held = self.discovery.why_missing(index), self._held(index)
        if not held:
            return why.reason
        gives = self.admission.names.get(index) if self.admission is not None else None
        if gives and why.cause in (Cause.NOT_LISTED, Cause.NOT_ASKED):
            return f"{held}; its name gives {', '.join(sorted(gives))}"
        return f"{held}; {why.reason}"

    def cause(self, index: int) -> Cause | None:
        """Why peer ``index`` is not reached yet, typed (None once it is). A contact claiming
        it from an address DNS does not list outweighs the listed address's refusal: its agent
        has started (the hints must not say it has not); a telling cause (another token) still
        wins, as it decides the exit code."""
        if self.reach.peers[index].reached:
            return None
        cause = self.discovery.why_missing(index).cause
        if cause not in TELLING_CAUSES and self._held(index):
            # no answer to list it is DNS's failure, not the peer's --listen or a mesh's
            return Cause.DNS_FAILED if self.service_failed else Cause.UNLISTED_SOURCE
        return cause

    def missing(self) -> list[tuple[int, str]]:
        """The peers not reached and why; once all are, what the barrier still waits for."""
        out = [(p.index, self.reason(p.index)) for p in self.reach.missing()]
        return out or [(i, f"barrier: {why}") for i, why in self.barrier_waits()]

    def barrier_waits(self) -> list[tuple[int, str]]:
        """Whom the barrier still waits for, and why: the members that have not arrived (at
        the coordinator), or the coordinator (at a member)."""
        if isinstance(self.side, Coordinator):
            return [(i, self._held(i) or why) for i, why in self.side.waiting_for()]
        if isinstance(self.side, Member):
            return [(0, self.side.last_problem)]
        return []

    def _held(self, index: int) -> str:
        """Why member ``index`` does not count though its session is open, if it is held."""
        address = self.admission.held_from(index) if self.admission is not None else None
        if address is None:
            return ""
        if self.service_failed is not None:  # DNS said nothing of it, so not "does not list"
            why = self.service_failed.reason
            return f"connected from {address}, not counted until a DNS answer lists it: {why}"
        return (
            f"connected from {address}, which DNS does not list for it: not counted unless "
            "an answer does"
        )

    def progress(self, elapsed: float) -> LogLine:
        """Who is missing and why, or once every peer is reached, what the barrier waits for:
        never "all reached" and "missing" in one line."""
        peers, waited = self.config.topology.peers, f"waiting {elapsed:.0f}s"
        missing = [(p.index, self.reason(p.index)) for p in self.reach.missing()]
        if not missing:
            waits = self.barrier_waits()
            line = f"{waited}: all {peers} peers reached; waiting for the barrier"
            line += f": {self._named(waits)}" if waits else ""
            fields = {"reached": peers, "missing": [i for i, _ in waits]}
            return LogLine(LogKind.PROGRESS, line, {**fields, "waiting_for": "barrier"})
        causes = [self.cause(p.index) for p in self.reach.peers]
        own, probe_port = self.config.topology.index, self.config.probe.port
        hint = nobody_listens(causes, self.config.port, own=own, probe_port=probe_port)
        reached = peers - len(missing)
        line = f"{waited}: {reached}/{peers} peers reached; missing: {self._named(missing)}"
        line += f"; hint: {hint}" if hint else ""
        fields = {"reached": reached, "missing": [i for i, _ in missing]}
        return LogLine(LogKind.PROGRESS, line, {**fields, "waiting_for": "peers"})

    def _named(self, whys: list[tuple[int, str]]) -> str:
        """``name (why)`` for the first eight, and how many more."""
        t, more = self.config.topology, len(whys) - 8
        named = ", ".join(f"{t.hostname(i)} ({why})" for i, why in whys[:8])
        return named + (f", … {more} more" if more > 0 else "")

    def timeout(self) -> BarrierTimeout:
        missing = self.missing()
        lines = [f"{self.config.topology.display(i)}: {why}" for i, why in missing]
        reasons = [self.reason(p.index) if not p.reached else "" for p in self.reach.peers]
        causes = [self.cause(p.index) for p in self.reach.peers]
        t, resolv, port = self.config.topology, self.config.pod_resolv, self.config.port
        what = f"{len(missing)} peer(s) missing"
        if self.reach.done:  # said as the progress lines say it: not "missing" after all
            what = f"all {t.peers} peers reached; the barrier waits for {len(missing)}"
        # a silent address of the Service that told another token is a missing peer's, whether
        # or not its name was asked since (by then its agent may have left, and only refuses)
        heard = [*causes, *self.discovery.silent_causes()]
        tokens = [c for c in heard if c in (Cause.REFUSED_BY_PEER, Cause.WRONG_TOKEN)]
        if tokens:
            what += " (exit 4: the pods do not share one token)"
        error = TokenMismatch if tokens else BarrierTimeout
        return error(
            f"timed out after {self.config.timeout:g}s; {what}",
            missing=lines,
            hints=[
                *dns_hint(self.dns_slow),
                *service_hint(self.service_failed, t.domain),
                *hints_for(
                    t, resolv, reasons, causes, port=port, probe_port=self.config.probe.port
                ),
            ],
        )

    def outcome(self, elapsed: float, addresses: dict[int, tuple[str, ...]]) -> Outcome:
        peers = PeerList(self.config.topology, dict(addresses))
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
