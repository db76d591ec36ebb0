"""What the agent reports while it works: one event type, formatted by the CLI as text or JSON."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Event", "Reporter", "printable"]


@dataclass(frozen=True)
class Event:
    kind: str  # e.g. "reached", "progress", "released", "refused"
    message: str
    fields: Mapping[str, Any] = field(default_factory=dict)


Reporter = Callable[[Event], None]


def printable(text: str, *, limit: int | None = None) -> str:
    """``text`` safe for one line of a log: every character that is not printable (newline, ESC,
    other controls, bidi overrides, lone surrogates) escaped as Python would (``\\n``,
    ``\\x1b``), then cut at ``limit`` characters."""
    if not text.isprintable():
        text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    if limit is not None and len(text) > limit:
        text = text[: limit - 3] + "..."
    return text
