"""The checker is tested by mutants: each seeded mutation of the core's decisions
(tests/sim/mutants.py) is flagged by every schedule it names (tests/sim/killers.py), judged
only by the checker from the network's record and the liveness rule; and the shipped core
passes every one of those schedules, so what flags a mutant is its mutation.

Run with ``-s`` to see, per mutant, why it matters and what each schedule found.
"""

from __future__ import annotations

import pytest

from tests.sim.killers import SCENARIOS, Scenario
from tests.sim.mutants import MUTANTS, Mutant


@pytest.mark.timeout(120)
@pytest.mark.parametrize("scenario", SCENARIOS.values(), ids=lambda s: s.name)
def test_the_shipped_core_passes_every_schedule_that_kills(scenario: Scenario) -> None:
    assert scenario.run() == []


@pytest.mark.timeout(120)
@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda m: m.name)
def test_every_mutant_is_killed_by_each_schedule_it_names(
    mutant: Mutant, monkeypatch: pytest.MonkeyPatch
) -> None:
    mutant.apply(monkeypatch)
    survived = []
    for name in mutant.killers:
        problems = SCENARIOS[name].run()
        print(f"{mutant.name} ({mutant.why}): {name}: {problems[:1] or 'survived'}")
        if not problems:
            survived.append(name)
    assert survived == [], f"{mutant.name} survives {survived}: {mutant.why}"


def test_a_dozen_distinct_mutants_each_with_a_schedule() -> None:
    names = [m.name for m in MUTANTS]
    assert len(names) >= 12 and len(set(names)) == len(names)
    assert all(m.killers and set(m.killers) <= SCENARIOS.keys() for m in MUTANTS)
