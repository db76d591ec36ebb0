"""Lint: an agent told to listen on an IPv4 address only (a pitfall in IPv6 and dual-stack).

One function: the container in, the finding's field and address out.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from agent.lint.agent_use import _env_value, _invocation, _option

__all__ = ["ipv4_only_listen"]


def ipv4_only_listen(container: dict[Any, Any]) -> tuple[str, str] | None:
    """(field, address) when `--listen` / PEER_AGENT_LISTEN is an IPv4 address, else None.

    In an IPv6-only cluster, or a dual-stack one whose Service publishes IPv6, peers reach the
    pod at an IPv6 address, where an agent listening on 0.0.0.0 has nothing.
    """
    found = _invocation(container)
    if found is None:
        return None
    value, field = _option(found[1], "--listen"), "args"
    if value is None:
        env = [e for e in container.get("env") or () if isinstance(e, dict)]
        named = next((e for e in env if e.get("name") == "PEER_AGENT_LISTEN"), None)
        value, _ = _env_value(named)
        field = "env[PEER_AGENT_LISTEN]"
    try:
        address = ipaddress.ip_address(value or "")
    except ValueError:
        return None
    return (field, str(address)) if address.version == 4 else None
