"""The short soak `make test` runs: 10 barriers of 8-16 pods with skew, restarts, DNS faults.

The full soak is `make soak` (200 barriers). A failure names each barrier and what went wrong;
rerun one with `python -m tests.soak --seed 11 --only K` and read build/soak-failures/.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness.fixtures import require_root
from tests.soak.soak import REPO, run_soak

BARRIERS = 10
SEED = 11  # any seed; fixed so that a failure can be replayed barrier by barrier


@pytest.mark.netns
@pytest.mark.timeout(110)
def test_short_soak_has_no_hang_early_or_wrong_release(tmp_path: Path) -> None:
    require_root()
    result = run_soak(
        BARRIERS,
        SEED,
        tmp_path,
        bound=30.0,  # healthy barriers take 2-8 s; the test must end within its timeout
        keep_dir=REPO / "build" / "soak-failures-short",
    )
    summary = result.summary
    assert summary["barriers"] == BARRIERS
    assert summary["restarts"] > 0 and summary["dns_faults"] > 0, summary  # faults did happen
    failures = "\n".join(result.failures())
    assert summary["hangs"] == 0, failures
    assert summary["early_releases"] == 0, failures
    assert summary["wrong_releases"] == 0, failures
