"""Which driver performs the core's effects: the one place that decides.

The selectors driver (``agent.io.sync``) imports neither asyncio nor anyio, whose imports and
event loop are most of a short-lived pod's CPU; it performs what ``wait`` and ``run``'s start
barrier need with the ``tcp`` probe (or ``tcp:PORT``, ``dns``). Anything else (a sidecar, the
exit and named barriers, the health server, ICMP, ``doctor``) keeps the anyio driver.
"""

from __future__ import annotations

from agent.config.model import Config, Driver, ProbeKind
from agent.options import Command

__all__ = ["pick"]


def _needs_anyio(config: Config) -> str:
    """What in ``config`` only the anyio driver performs ("" for nothing)."""
    if config.command not in (Command.WAIT, Command.RUN):
        return f"the {config.command} command"
    if config.exit_barrier:
        return "the exit barrier"
    if config.probe.kind is ProbeKind.ICMP:
        return "the icmp probe"
    return ""


def pick(config: Config) -> tuple[Driver, str]:
    """The driver for ``config`` (``--driver``: auto, anyio, selectors), and why, for the
    debug log. ``selectors`` asked for where it does not suffice runs anyio, and says so;
    ``auto`` (the default) takes selectors where it suffices: 163 ms a pod at N = 64 against
    anyio's 275 (``docs/benchmarks.md``); ``--driver anyio`` is the way back."""
    needs = _needs_anyio(config)
    if config.driver is Driver.ANYIO:
        return Driver.ANYIO, "asked for (--driver anyio)"
    if needs:
        return Driver.ANYIO, f"{needs} needs it"
    if config.driver is Driver.SELECTORS:
        return Driver.SELECTORS, "asked for (--driver selectors)"
    return Driver.SELECTORS, "the config needs nothing else (--driver auto)"
