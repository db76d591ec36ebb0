"""`peer-agent lint`: the wiring mistakes in a user's manifests, before `kubectl apply`.

``files`` reads and parses the input, ``rules`` checks the objects, ``agent_use`` finds the
peer-agent containers in a pod template. The CLI imports this package lazily: only `lint` pays
for it (and for PyYAML).
"""

from __future__ import annotations

from agent.lint.files import (
    LintInputError,
    LintReport,
    format_finding,
    lint_documents,
    lint_paths,
)
from agent.lint.finding import Finding

__all__ = [
    "Finding",
    "LintInputError",
    "LintReport",
    "format_finding",
    "lint_documents",
    "lint_paths",
]
