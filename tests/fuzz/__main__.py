"""``python -m tests.fuzz [libFuzzer options] [CORPUS_DIR...]``: the target under atheris."""

from __future__ import annotations

import sys

import atheris

from tests.fuzz import target

with atheris.instrument_imports(include=["agent", "h11"]):
    target.load()

atheris.Setup(sys.argv, target.one_input)
atheris.Fuzz()
