"""The agents' JSON log lines (`--log-format json`), as the soak reads them."""

from __future__ import annotations

import datetime
import json
from typing import Any


def events(log: str) -> list[dict[str, Any]]:
    """The JSON lines of an agent's log, each with `t` (epoch seconds) added."""
    out = []
    for line in log.splitlines():
        if not line.startswith("{"):
            continue
        try:
            record = json.loads(line)
            record["t"] = datetime.datetime.fromisoformat(record["ts"]).timestamp()
        except (ValueError, KeyError, TypeError):
            continue
        out.append(record)
    return out
