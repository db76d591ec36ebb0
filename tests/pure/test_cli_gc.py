"""The CLI's GC policy while a barrier is open: survivors of a full collection are frozen, and
thawing gives them back (a sidecar lives on after the release)."""

from __future__ import annotations

import gc

import pytest

from agent.commands.cli import _freeze_survivors
from agent.commands.collecting import collect_garbage_from_now as _collect_garbage_from_now

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


def test_the_gc_off_since_the_start_comes_on_with_what_was_allocated_frozen() -> None:
    """``agent.__main__`` starts the CLI with the cyclic GC off (imports, and anyio.run's
    asyncio, allocate only long-lived objects); the CLI turns it on once its loop runs, and
    what exists by then is never scanned. Called with the GC on (in-process), it does nothing."""
    gc.collect()
    gc.disable()
    try:
        _collect_garbage_from_now()
        assert gc.isenabled()
        frozen = gc.get_freeze_count()
        _collect_garbage_from_now()
        assert gc.get_freeze_count() == frozen
    finally:
        gc.enable()
        gc.unfreeze()
    assert frozen > 0
