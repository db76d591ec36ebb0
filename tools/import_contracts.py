"""An import-linter contract for what the import graph cannot say alone: which *names* a module
may take from another. The pure layers may use ``pathlib.PurePath`` (a value: a path's parts,
never the filesystem) but not ``Path`` (which reads and writes files), and a forbidden contract
sees only the module ``pathlib``. Registered in pyproject.toml as ``names_only``; `lint-imports`
runs it with the other contracts.
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path
from typing import cast

from grimp import ImportGraph
from importlinter.application import output
from importlinter.domain import fields
from importlinter.domain.contract import Contract, ContractCheck


class NamesOnlyContract(Contract):
    """``source_modules`` (packages: their descendants too) may import ``module`` only as
    ``from module import NAME`` with NAME one of ``allowed_names``."""

    type_name = "names_only"

    source_modules = fields.ListField(subfield=fields.StringField())
    module = fields.StringField()
    allowed_names = fields.ListField(subfield=fields.StringField())

    def check(self, graph: ImportGraph, verbose: bool) -> ContractCheck:
        module = cast(str, self.module)
        allowed = set(cast(list[str], self.allowed_names))
        sources = set(cast(list[str], self.source_modules))
        for source in list(sources):
            sources |= graph.find_descendants(source)
        importers = sources & graph.find_modules_that_directly_import(module)
        violations = [
            f"{importer}:{line} takes {name} from {module}"
            for importer in sorted(importers)
            for line, name in _names_taken(importer, module)
            if name not in allowed
        ]
        allowed_line = f"Allowed from {module}: {', '.join(sorted(allowed))}."
        return ContractCheck(
            kept=not violations,
            warnings=[],
            metadata={"found": violations, "allowed": allowed_line},
        )

    def render_broken_contract(self, check: ContractCheck) -> None:
        for violation in check.metadata["found"]:
            output.print_error(violation)
        output.print(check.metadata["allowed"])
        output.new_line()


def _names_taken(importer: str, module: str) -> list[tuple[int, str]]:
    """(line, name) for each import of ``module`` in ``importer``'s source; a plain ``import
    module`` takes the whole module (its name is then ``module`` itself)."""
    spec = importlib.util.find_spec(importer)
    assert spec is not None and spec.origin is not None, importer
    taken: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(Path(spec.origin).read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            taken += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == module]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module == module:
            taken += [(node.lineno, a.name) for a in node.names]
    return taken
