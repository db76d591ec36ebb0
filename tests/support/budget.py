"""Test budgets as multiples of the loaded Hypothesis profile (tests/conftest.py).

A test that needs more examples than the profile's ``max_examples`` (a barrier schedule is worth
more than a parsed flag) asks for ``budget(times)``: ``times`` the profile's number, so the quick
``dev`` profile, CI's ``ci`` and ``make deep``'s ``deep`` all scale it, and CI runs exactly
``100 * times``. A ``max_examples`` written as a number would override every profile.
"""

from __future__ import annotations

from hypothesis import settings

#: the ``ci`` profile's max_examples: a test's CI budget is ``times`` this many
CI_EXAMPLES = 100


def budget(times: float) -> int:
    """``times`` the loaded profile's max_examples, at least one. Read at import, after
    tests/conftest.py (and ``--hypothesis-profile``) chose the profile."""
    return max(1, round(_loaded().max_examples * times))


def scale() -> float:
    """How much larger the loaded profile's budgets are than CI's (0.1 for ``dev``)."""
    return _loaded().max_examples / CI_EXAMPLES


def _loaded() -> settings:
    loaded = settings.default
    assert loaded is not None, "tests/conftest.py loads a profile"
    return loaded
