"""What the agent reports while it works: one event type, formatted by the CLI as text or JSON."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Event", "Reporter"]


@dataclass(frozen=True)
class Event:
    kind: str  # e.g. "reached", "progress", "released", "refused"
    message: str
    fields: Mapping[str, Any] = field(default_factory=dict)


Reporter = Callable[[Event], None]
