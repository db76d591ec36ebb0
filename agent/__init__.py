"""peer-agent: the barrier for the pods of a Kubernetes Indexed Job.

From Python: ``agent.wait(**options)`` (blocking) or ``await agent.barrier(**options)``
(asyncio or trio), with the CLI's options; see :mod:`agent.api`.
"""

from __future__ import annotations

import sys
import types

__version__ = "0.1.0"  # before the import below: modules it imports may read it


class _Package(types.ModuleType):
    """``agent.barrier`` is the API's function, but also the name of the submodule of the
    barrier's roles: importing that submodule sets the package's attribute to it, which would
    turn ``agent.barrier(...)`` into "module is not callable". The function keeps the name
    (``from agent.barrier import Coordinator`` still finds the submodule in ``sys.modules``)."""

    def __setattr__(self, name: str, value: object) -> None:
        if name == "barrier" and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

from agent.api import Peer, Result, barrier, wait  # noqa: E402

__all__ = ["Peer", "Result", "__version__", "barrier", "wait"]
