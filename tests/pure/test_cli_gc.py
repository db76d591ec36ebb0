"""The CLI's GC policy while a barrier is open: survivors of a full collection are frozen, and
thawing gives them back (a sidecar lives on after the release)."""

from __future__ import annotations

import gc

import pytest

from agent.commands.cli import _freeze_survivors

pytestmark = pytest.mark.timeout(10)


def test_survivors_of_a_full_collection_are_frozen_until_thawed() -> None:
    thaw = _freeze_survivors()
    try:
        survivors: list[list[object]] = [[] for _ in range(100)]  # noqa: F841  # alive through the collection
        gc.collect()
        frozen = gc.get_freeze_count()
    finally:
        thaw()
    assert frozen > 0
    assert gc.get_freeze_count() == 0
    thaw()  # once is enough; again is harmless
    gc.collect()
    assert gc.get_freeze_count() == 0
