"""Hypothesis profiles. CI gates what lands, so it replays the same examples every run: a rare
schedule must not fail one submission in a hundred. A developer's `make test` draws new examples
each run, which is how rare schedules are found; each one found becomes an ``@example``."""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
