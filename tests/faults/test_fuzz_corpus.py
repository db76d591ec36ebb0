"""The coverage-guided fuzz target's seed corpus and every crash it ever found, replayed through
the real code path on each ``make test`` (``make fuzz`` explores beyond them with atheris)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fuzz import target

pytestmark = pytest.mark.timeout(60)
FUZZ = Path(__file__).resolve().parents[1] / "fuzz"
INPUTS = sorted(p for d in ("corpus", "crashes") for p in (FUZZ / d).iterdir() if p.suffix != ".md")


@pytest.mark.parametrize("path", INPUTS, ids=[f"{p.parent.name}/{p.name}" for p in INPUTS])
def test_the_fuzz_corpus_and_crashes_replay_clean(path: Path) -> None:
    """Each input ends in the path's own errors: a WireError, a refused handshake, an HTTP
    answer, never another exception."""
    target.load()
    target.one_input(path.read_bytes())
