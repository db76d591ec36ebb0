"""What `peer-agent lint` reports, and how every rule reads a user's YAML.

The input is a user's manifest, so a field may hold anything: the accessors turn a wrong type
into "absent", and a malformed manifest yields findings or silence, never an exception.
"""

from __future__ import annotations

from typing import Any

from agent.values import value

__all__ = ["Finding", "Obj", "as_list", "as_map", "as_str", "name_of", "namespace_of", "ref_of"]

Obj = dict[str, Any]


@value
class Finding:
    """One pitfall: where it is (file, Kind/name, field path), what goes wrong, and the fix."""

    file: str
    obj: str
    field: str
    message: str
    fix: str
    #: "error" breaks peer discovery; "warning" degrades it or risks it elsewhere.
    severity: str = "error"


def as_map(x: object) -> dict[Any, Any]:
    return x if isinstance(x, dict) else {}


def as_list(x: object) -> list[Any]:
    return x if isinstance(x, list) else []


def as_str(x: object) -> str | None:
    return x if isinstance(x, str) else None


def name_of(obj: Obj) -> str | None:
    return as_str(as_map(obj.get("metadata")).get("name"))


def namespace_of(obj: Obj) -> str | None:
    return as_str(as_map(obj.get("metadata")).get("namespace"))


def ref_of(obj: Obj) -> str:
    """``Kind/name``, as findings name an object."""
    return f"{obj.get('kind')}/{name_of(obj) or '<unnamed>'}"
