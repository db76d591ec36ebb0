"""peer-agent: the barrier for the pods of a Kubernetes Indexed Job.

From Python: ``agent.wait(**options)`` (blocking) or ``await agent.barrier(**options)``
(asyncio or trio), with the CLI's options; see :mod:`agent.commands.api`.

Importable by any Python 3.6 or later, as ``agent/__main__.py`` is: both run before the CLI
checks the Python version (no ``from __future__ import annotations`` here).
"""

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from agent.commands.api import Peer, Result, barrier, wait

__all__ = ["Peer", "Result", "__version__", "barrier", "wait"]


def __getattr__(name: str) -> Any:
    # The API on first use, not with the package: the CLI (every pod's start) never needs it.
    if name in ("Peer", "Result", "barrier", "wait"):
        from agent.commands import api

        return getattr(api, name)
    raise AttributeError(f"module 'agent' has no attribute {name!r}")
