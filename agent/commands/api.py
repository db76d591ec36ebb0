"""The Python API: the barrier in-process, for a training script or a Ray/Dask bootstrap.

``await agent.barrier(**options)`` (anyio: asyncio or trio) and ``agent.wait(**options)``
(blocking) take the CLI's options by their long names (``peers=3``, ``service="svc"``,
``timeout="90s"``), read the pod exactly as the CLI does (variables, ``/etc/hosts``, files) and
validate through the same parse; they return a frozen :class:`Result` or raise the project's
errors (``ConfigError``, ``BarrierTimeout``, ``BarrierAborted``, each carrying its exit code).
Nothing here prints, exits or installs signal handlers: those belong to the host program. What
the agent reports goes to the ``peer_agent`` logger.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from agent.config.model import LogLevel
from agent.core.log import LogKind, LogLine
from agent.errors import leaf_error
from agent.values import value

__all__ = ["Peer", "Result", "barrier", "wait"]

_LOG = logging.getLogger("peer_agent")
#: options the API takes a number for (seconds for the timeout), like the text of the flag
_NUMBER_OK = frozenset({"peers", "index", "port", "slots", "timeout", "health_port"})


@value
class Peer:
    """One peer as the barrier found it: its addresses are those it was reached at."""

    index: int
    hostname: str
    fqdn: str
    addresses: tuple[str, ...]


@value
class Result:
    """What a passed barrier tells the caller: the torch-style variables, typed."""

    rank: int | None  # None for a pod that is not one of the peers (a launcher)
    world_size: int
    master_addr: str
    peers: tuple[Peer, ...]
    how: str  # how the barrier was released, e.g. "released by the coordinator"
    elapsed: float  # seconds from start to release


def _text(dest: str, value: object) -> str | None:
    """An option's value as the CLI would have read it from its flag."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise TypeError(f"{dest}= takes a str, not {type(value).__name__}")
    if isinstance(value, str):
        return value
    if dest not in _NUMBER_OK:
        raise TypeError(f"{dest}= takes a str, not {type(value).__name__}")
    return f"{value}s" if dest == "timeout" else str(value)


#: each line's level as ``logging`` spells it
_LOGGING_LEVELS = {
    LogLevel.DEBUG: logging.DEBUG,
    LogLevel.INFO: logging.INFO,
    LogLevel.WARNING: logging.WARNING,
    LogLevel.ERROR: logging.ERROR,
}


def _logger(lowest: LogLevel) -> Callable[[LogLine], None]:
    """Hands the lines at ``log_level=`` (default info) and above to the ``peer_agent`` logger
    at the matching ``logging`` level; the logger's own configuration filters further."""

    def log(event: LogLine) -> None:
        if event.level.at_least(lowest):
            extra = {"peer_agent": dict(event.fields)}
            _LOG.log(_LOGGING_LEVELS[event.level], "%s", event.message, extra=extra)

    return log


async def barrier(**options: str | int | float | None) -> Result:
    """Pass the start barrier with this pod's peers; the options are the CLI's (``--job-name``
    is ``job_name=``). Runs under asyncio or trio.

    Raises ConfigError (bad options: every problem, each naming its flag and variable),
    BarrierTimeout or BarrierAborted.
    """
    # Imported here: ``import agent`` stays cheap for a program that only names the types.
    from agent.config.parse import load_config
    from agent.io.outputs import write_outputs
    from agent.io.podfacts import read_pod_facts
    from agent.io.runner import serve_and_wait
    from agent.options import Command

    flags = {dest: _text(dest, value) for dest, value in options.items()}
    config = load_config(Command.WAIT, flags, read_pod_facts(flags))
    log = _logger(config.log_level)
    for warning in config.warnings:
        log(LogLine(LogKind.WARNING, warning, level=LogLevel.WARNING))
    try:
        outcome = await serve_and_wait(config, report=log)
    except BaseExceptionGroup as group:  # anyio's task groups wrap what the barrier raised
        raise leaf_error(group) from None
    write_outputs(config, outcome)  # --hostfile= etc. work here as well
    t = config.topology
    return Result(
        rank=t.index,
        world_size=t.world_size,
        master_addr=t.display(0),
        peers=tuple(Peer(p.index, p.hostname, p.fqdn, p.addresses) for p in outcome.peers),
        how=str(outcome.how),
        elapsed=outcome.elapsed,
    )


def wait(**options: str | int | float | None) -> Result:
    """:func:`barrier`, blocking: for code that has no event loop running."""
    import anyio

    async def run() -> Result:
        return await barrier(**options)

    return anyio.run(run)
