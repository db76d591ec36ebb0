"""``--reach`` and ``--reach-degree``: whom each pod probes (docs/at-scale.md). Pure."""

from __future__ import annotations

from agent.config.model import ReachMode
from agent.options import OPTIONS
from agent.problems import Problems
from agent.topology.inputs import is_number

__all__ = ["parse_reach"]

_BY_DEST = {o.dest: o for o in OPTIONS}


def parse_reach(
    p: Problems, mode_text: str | None, degree_text: str | None
) -> tuple[ReachMode | None, int | None]:
    """``--reach`` and ``--reach-degree``: a degree only with a sparse graph (all-to-all has
    none to choose), and at least 2 (each pod's ring neighbours hold the graph together)."""
    mode = p.parse(_BY_DEST["reach"], mode_text, _reach_mode)
    degree = p.parse(_BY_DEST["reach_degree"], degree_text, _reach_degree)
    if degree_text is not None and mode is ReachMode.ALL:
        p.add(_BY_DEST["reach_degree"], "only with --reach sparse: with all, every pod is probed")
    return mode, degree


def _reach_mode(text: str) -> ReachMode:
    try:
        return ReachMode(text)
    except ValueError:
        raise ValueError(f"unknown reach {text!r} (use all or sparse)") from None


def _reach_degree(text: str) -> int:
    if not is_number(text) or int(text) < 2:
        raise ValueError(f"not a degree: {text!r} (a whole number, 2 or more)")
    return int(text)
