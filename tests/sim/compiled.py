"""The same cores compiled: ``python -m tests.sim.compiled DIR MODULE [ARG...]`` runs MODULE as
``python -m MODULE ARG...`` would, with DIR first on ``sys.path``.

``make scale`` builds DIR (``build/mypyc``): a copy of ``agent/`` and ``tests/sim/`` in which
mypyc compiled the unchanged sources of ``agent/core``, ``agent/protocol`` and the simulator's
loop into extension modules beside them, so the in-memory rows run the shipped core's own
code, compiled (7-23 % less CPU; docs/benchmarks.md, fifth pass). Without a build there
(mypyc or a C compiler missing, or the build failed), the interpreted core from the same DIR or
the checkout runs, and a line says which.
``python -m tests.sim.digest`` run both ways prints the same digests: the same decisions.

The CPU a compiled core spends is not what the shipped, interpreted agent spends:
``tests/sim/scale.py`` charges it scaled (``COMPILED_CPU_FACTOR``).
"""

from __future__ import annotations

import importlib
import importlib.machinery
import os
import runpy
import sys
from collections.abc import Sequence

__all__ = ["compiled_core", "main"]


def compiled_core() -> bool:
    """Whether the agent's core (``agent.core.agent``) was loaded from an extension module."""
    path = importlib.import_module("agent.core.agent").__file__ or ""
    return path.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))


def main(argv: Sequence[str]) -> int:
    if len(argv) < 2:
        print("usage: python -m tests.sim.compiled DIR MODULE [ARG...]", file=sys.stderr)
        return 2
    build, module, *rest = argv
    # before anything imports agent: the build's copy wins over the checkout (sys.path[0])
    sys.path.insert(0, os.path.abspath(build))
    if compiled_core():
        print(f"the cores: agent/core compiled by mypyc ({build})", flush=True)
    else:
        print(f"the cores: interpreted (no compiled agent/core in {build})", flush=True)
    sys.argv = [module, *rest]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
