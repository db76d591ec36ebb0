"""peer-agent: the barrier for the pods of a Kubernetes Indexed Job.

From Python: ``agent.wait(**options)`` (blocking) or ``await agent.barrier(**options)``
(asyncio or trio), with the CLI's options; see :mod:`agent.api`.
"""

from __future__ import annotations

__version__ = "0.1.0"  # before the import below: modules it imports may read it

from agent.api import Peer, Result, barrier, wait

__all__ = ["Peer", "Result", "__version__", "barrier", "wait"]
