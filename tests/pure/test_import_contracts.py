"""The layer rules are import-linter contracts (pyproject.toml), and they bite.

Each planted import goes into a copy of the ``agent`` tree; `lint-imports` run there must fail
and name the module that broke the rule, so a pure module that starts doing I/O, a layer that
reaches up, or a new cycle cannot land.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# `lint-imports` itself, from whichever environment runs the tests (a venv may lack the script)
LINT_IMPORTS = "from importlinter.cli import lint_imports_command; lint_imports_command()"

pytestmark = pytest.mark.timeout(60)


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", LINT_IMPORTS, "--no-cache", "--no-logo"],
        cwd=tree,
        capture_output=True,
        text=True,
        timeout=50,
        env={**os.environ, "COLUMNS": "200"},  # one line per contract's verdict
    )


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """What `lint-imports` reads, copied: the package, the contracts, the custom contract type."""
    shutil.copytree(
        ROOT / "agent", tmp_path / "agent", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy2(ROOT / "pyproject.toml", tmp_path)
    (tmp_path / "tools").mkdir()
    shutil.copy2(ROOT / "tools" / "import_contracts.py", tmp_path / "tools")
    return tmp_path


def test_the_shipped_tree_keeps_every_contract(tree: Path) -> None:
    result = lint_imports(tree)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


# Each contract by the start of its name in pyproject.toml.
LAYERS = "Layers:"
PURE = "Pure layers: no network"
PURE_PATHS = "Pure layers: only PurePath"
LINT = "agent.lint reads manifests"
ACYCLIC = "No import cycle"

#: (module, the import planted in it, the contract it breaks, what the report names)
PLANTED = [
    ("core/agent.py", "import socket", PURE, "agent.core.agent -> socket"),
    ("core/inputs.py", "import random", PURE, "agent.core.inputs -> random"),
    ("core/hints.py", "import time", PURE, "agent.core.hints -> time"),
    ("errors.py", "import logging", PURE, "agent.errors -> logging"),
    ("topology/derive.py", "from os import environ", PURE, "agent.topology.derive -> os"),
    ("config/parse.py", "from pathlib import Path", PURE_PATHS, "agent.config.parse:"),
    ("core/agent.py", "import agent.io.runner", LAYERS, "agent.core.agent -> agent.io"),
    ("lint/rules.py", "import agent.core.inputs", LINT, "agent.lint.rules -> agent.core"),
    ("protocol/wire.py", "import agent.protocol.handshake", ACYCLIC, ".wire -> .handshake"),
]


def test_each_planted_import_breaks_its_contract_by_name(tree: Path) -> None:
    """One run over all of them (each names a different module, so none hides another)."""
    for module, planted, _, _ in PLANTED:
        path = tree / "agent" / module
        path.write_text(f"{path.read_text()}\n{planted}\n")
    result = lint_imports(tree)
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    missed = [
        (module, planted)
        for module, planted, contract, named in PLANTED
        if named not in result.stdout
        or not any(line.startswith(contract) and " BROKEN" in line for line in lines)
    ]
    assert missed == [], result.stdout
