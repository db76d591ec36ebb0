"""Hypothesis budgets live in the profiles (tests/conftest.py). A ``max_examples`` written as a
number in a test overrides every profile: ``make check`` gets slower, ``make deep`` no deeper, and
CI's budget drifts from what the profile says. A test that needs its own budget asks for a
multiple of the profile's with ``tests.support.budget.budget``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
PROFILES = TESTS / "conftest.py"

pytestmark = pytest.mark.timeout(30)


def _is_budget_call(node: ast.expr) -> bool:
    return isinstance(node, ast.Call) and ast.unparse(node.func) == "budget"


def test_every_hypothesis_budget_is_a_multiple_of_the_profile() -> None:
    sources = {path: path.read_text(encoding="utf-8") for path in sorted(TESTS.rglob("*.py"))}
    fixed = [
        f"{path.relative_to(TESTS.parent)}:{keyword.value.lineno}"
        for path, source in sources.items()
        if path != PROFILES and "max_examples" in source
        for keyword in ast.walk(ast.parse(source))
        if isinstance(keyword, ast.keyword)
        and keyword.arg == "max_examples"
        and not _is_budget_call(keyword.value)
    ]
    assert fixed == [], "max_examples=budget(times) instead of a fixed number"
