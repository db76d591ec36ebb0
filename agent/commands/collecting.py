"""The cyclic GC at the start of the barrier's loop, for both drivers."""

from __future__ import annotations

import gc

__all__ = ["collect_garbage_from_now"]


def collect_garbage_from_now() -> None:
    """Turn on the cyclic GC, off since the interpreter started (``agent.__main__``), freezing
    what was allocated until now: modules, classes, the config, and asyncio with anyio's backend
    once ``anyio.run`` has imported them, all of which live as long as the process. (Called
    in-process, as the tests do, with the GC on: nothing to do.)"""
    if not gc.isenabled():
        gc.freeze()
        gc.enable()
