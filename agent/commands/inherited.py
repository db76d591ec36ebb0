"""What Python sets in its own process that a workload it starts must not inherit.

Apart from ``agent.commands.workload`` (which imports anyio for ``run --exit-barrier``): ``run``
restores these before its ``exec`` on the selectors driver, which imports no event loop.
"""

from __future__ import annotations

import signal

__all__ = ["PYTHON_IGNORES"]

#: what Python ignores from its start, which a workload (spawned or exec'd) must not inherit
PYTHON_IGNORES = (signal.SIGPIPE, signal.SIGXFSZ)
