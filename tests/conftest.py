"""Test tiers and Hypothesis profiles.

**Tiers.** Every test is marked by where it lives (the markers are declared in pyproject.toml):
``pure`` and ``sim`` need no network and no root and make up ``make check`` (but for what is
marked ``slow``); ``integration`` (agents and unbound on loopback), ``faults`` (fault injection
and fuzzing through the real path) and ``e2e`` (the cluster in a box: network namespaces, root)
are the rest of ``make test``. Select one with ``pytest -m sim``.

**Profiles.** Development draws new examples each run, few of them (``dev``, the default), which
is how rare schedules are found; each one found becomes an ``@example``. CI gates what lands, so
it replays the same examples every run (``ci``, loaded when ``CI`` is set): a rare schedule must
not fail one submission in a hundred. ``make deep`` runs ten times CI's budgets on fresh examples
(``--hypothesis-profile=deep``). A test that needs a budget of its own asks for a multiple of the
profile's (``tests.support.budget``), and its timeout grows with the profile too.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

from tests.support.budget import CI_EXAMPLES, scale

# dev keeps `make check` well under a minute on a busy 2-core machine.
settings.register_profile("dev", max_examples=CI_EXAMPLES // 10)
settings.register_profile("ci", max_examples=CI_EXAMPLES, derandomize=True)
settings.register_profile("deep", max_examples=CI_EXAMPLES * 10, derandomize=False)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

TESTS = Path(__file__).parent
#: each test folder's tier; the cluster in a box's own tests and the soak need root, as e2e does
TIER_OF_FOLDER = {
    "pure": "pure",
    "sim": "sim",
    "integration": "integration",
    "faults": "faults",
    "e2e": "e2e",
    "harness": "e2e",
    "soak": "e2e",
}
#: the files of those root folders that need no root, by what they do need
TIER_OF_FILE = {
    "harness/test_workload.py": "pure",  # the harness reading YAML
    "harness/test_clusterdns.py": "integration",  # unbound on loopback
    "soak/test_check.py": "pure",  # the soak's judge on hand-made records
}


def tier_of(path: Path) -> str:
    relative = path.relative_to(TESTS)
    return TIER_OF_FILE.get(relative.as_posix()) or TIER_OF_FOLDER[relative.parts[0]]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    grow = max(1.0, scale())
    for item in items:
        item.add_marker(tier_of(item.path))
        if grow > 1:  # a deeper profile runs longer: the same bound per example
            marker = item.get_closest_marker("timeout")
            seconds = float(marker.args[0]) if marker else float(config.getini("timeout"))
            item.add_marker(pytest.mark.timeout(seconds * grow), append=False)
