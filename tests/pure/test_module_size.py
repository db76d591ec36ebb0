"""One concept per module, small enough to read: no module over 400 lines anywhere in the tree
(the agent, its tests, bench, tools), and no function of the pure core over 40 lines."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(30)

ROOT = Path(__file__).resolve().parents[2]
TREES = ("agent", "tests", "bench", "tools")
MAX_MODULE, MAX_CORE_FUNCTION = 400, 40


def _modules() -> list[Path]:
    return sorted(p for tree in TREES for p in (ROOT / tree).rglob("*.py"))


def test_no_module_is_over_400_lines() -> None:
    long = {
        str(p.relative_to(ROOT)): n
        for p in _modules()
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE
    }
    assert long == {}


def test_no_function_of_the_core_is_over_40_lines() -> None:
    long = {}
    for path in sorted((ROOT / "agent" / "core").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                assert node.end_lineno is not None
                if (n := node.end_lineno - node.lineno + 1) > MAX_CORE_FUNCTION:
                    long[f"{path.relative_to(ROOT)}:{node.name}"] = n
    assert long == {}
