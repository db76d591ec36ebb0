"""The coverage-guided fuzz target's corpus and every crash it ever found, replayed through the
real code path on each ``make test`` (``make fuzz`` explores beyond them with atheris).

The corpus is the seeds (named for what they are) and what a 10-minute ``make fuzz`` added,
minimized with libFuzzer's ``-merge=1`` (about 120 inputs, 50 KB)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults.conftest import Record
from tests.fuzz import target

pytestmark = pytest.mark.timeout(120)
FUZZ = Path(__file__).resolve().parents[1] / "fuzz"


def test_the_fuzz_corpus_and_its_crashes_replay_clean(record: Record) -> None:
    """Every input of the corpus, and every crash ever found (none so far), ends in its path's
    own errors (a WireError, a refused handshake, an HTTP answer), never another exception."""
    target.load()
    inputs = sorted((FUZZ / "corpus").iterdir())
    inputs += sorted(p for p in (FUZZ / "crashes").iterdir() if p.suffix != ".md")
    for path in inputs:
        try:
            target.one_input(path.read_bytes())
        except Exception as exc:
            raise AssertionError(f"{path.name}: {exc!r}") from exc
    record(tries=len(inputs))
