"""The runner's randomness for the pace's jitter (``agent.io.runner.uniform``): what the core's
``rand`` promises (uniform in [0, 1)), from the kernel rather than the ``random`` module."""

from __future__ import annotations

import pytest

from agent.io.runner import REAL_DEPS, uniform

pytestmark = pytest.mark.timeout(10)


def test_draws_are_in_the_unit_interval_and_spread_over_it() -> None:
    draws = [uniform() for _ in range(20_000)]
    assert all(0.0 <= x < 1.0 for x in draws)
    counts = [0] * 10
    for x in draws:
        counts[int(x * 10)] += 1
    # 2,000 expected a tenth; a uniform source lands within ±300 of it (over 6 sigma)
    assert all(1_700 < c < 2_300 for c in counts), counts
    assert len(set(draws)) == len(draws)  # 53 bits: no repeats in 20,000


def test_the_real_dependencies_draw_from_it() -> None:
    assert REAL_DEPS.rand is uniform
