"""What the agent reports while it works: log lines, formatted by the CLI as text or JSON.

Each line's level is decided here, in the core, with the line (a typed field, never read back
from its text): the CLI shows it and drops the lines below ``--log-level``; the Python API
hands it to ``logging`` as the matching level.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Any

from agent.config.model import LogLevel
from agent.values import field, value

__all__ = ["LogKind", "LogLevel", "LogLine", "Reporter", "printable"]


class LogKind(StrEnum):
    """What a line reports: the ``event`` field of a JSON log line (API: the values stay)."""

    START = "start"  # the agent's topology and probe, once
    REACHED = "reached"  # a peer reached
    REACHED_ALL = "reached-all"  # every peer reached
    RELEASED = "released"  # the barrier released this pod
    ABORTED = "aborted"  # the barrier aborted
    PROGRESS = "progress"  # who is still missing, every few seconds
    CONTACT_REFUSED = "refused"  # this pod refused a contact (rate-limited)
    IGNORED = "ignored"  # contacts from addresses DNS does not list
    RESTARTED = "restarted"  # a peer restarted
    REPLACED = "replaced"  # this pod was replaced: its own name leads to a newer instance
    TRUNCATED = "truncated"  # the Service's answer is cut short
    DNS_SLOW = "dns-slow"  # cluster DNS fails a share of the queries: it holds the wait up
    SERVING = "serving"  # a sidecar serves on
    WARNING = "warning"  # a configuration warning
    ERROR = "error"  # an error (the exit code in JSON)
    FAILURE = "failure"  # the wait failed
    WORKLOAD = "workload"  # the workload started
    WORKLOAD_ENDED = "workload_ended"  # the workload ended (its code)
    WORKLOAD_STOPPED = "workload_stopped"  # the leader's workload ended: this pod's is stopped
    EXIT_BARRIER_FAILED = "exit_barrier_failed"  # the exit barrier timed out or aborted
    PEERS_FAILED = "peers_failed"  # the workload failed in other pods
    BUG = "bug"  # a bug of ours, caught (one connection closed)
    BUGS = "bugs"  # how many bugs were caught
    DRIVER = "driver"  # which I/O loop runs the barrier, and why (debug)


@value
class LogLine:
    """One line for the log: its kind, the text people read, the fields JSON adds, and how
    much it matters (info unless the line says otherwise)."""

    kind: LogKind
    message: str
    fields: Mapping[str, Any] = field(default_factory=dict)
    level: LogLevel = LogLevel.INFO


Reporter = Callable[[LogLine], None]


def printable(text: str, *, limit: int | None = None) -> str:
    """``text`` safe for one line of a log: every character that is not printable (newline, ESC,
    other controls, bidi overrides, lone surrogates) escaped as Python would (``\\n``,
    ``\\x1b``), then cut at ``limit`` characters."""
    if not text.isprintable():
        text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    if limit is not None and len(text) > limit:
        text = text[: limit - 3] + "..."
    return text
