"""``peer-agent sidecar``: pass the barrier, then stay up serving.

After the release the sidecar writes the outputs, turns ``/readyz`` 200 (a native sidecar's
startupProbe gates the main container on it) and keeps answering: the start barrier's instance
releases a pod restarted later at once, and ``POST /barrier/NAME`` runs named barriers
(``agent.commands.named``), every instance on the agent's one port (``agent.io.mux``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import anyio

from agent.commands.health import MAX_ANSWERED, MAX_CLIENTS, serve_health
from agent.commands.named import MAX_NAMES, MAX_WAITERS, NamedBarriers
from agent.config.model import Config
from agent.core.log import LogKind, LogLine, Reporter
from agent.core.outcome import Outcome
from agent.errors import ConfigError
from agent.io import listener
from agent.io.limits import barriers_covered, ensure_fd_limit
from agent.io.mux import Mux, open_port
from agent.io.runner import serve_and_wait
from agent.io.supervisor import Supervisor

__all__ = ["HEALTH_FDS", "serve_sidecar"]

#: the health port's connections at most: without a whole request, answered and closing, and
#: clients waiting in named barriers (``agent.commands.health``, ``agent.commands.named``)
HEALTH_FDS = MAX_CLIENTS + MAX_ANSWERED + MAX_WAITERS


async def serve_sidecar(
    config: Config,
    *,
    report: Reporter,
    supervisor: Supervisor,
    released: Callable[[], None] = lambda: None,
) -> Outcome:
    """Serve until cancelled; ``released`` is called once the barrier has released, before
    the outputs are written. ConfigError when a port cannot be bound; raises BarrierTimeout
    or BarrierAborted from the barrier."""
    ready = False

    async def stay_up(outcome: Outcome) -> None:
        nonlocal ready
        from agent.io.outputs import write_outputs  # after the barrier: not on the way to it

        released()
        write_outputs(config, outcome)
        ready = True
        named.started.set()
        report(
            LogLine(LogKind.SERVING, f"serving /readyz on port {config.health_port}; staying up")
        )
        await anyio.sleep_forever()

    _cover_named_barriers(config.topology.peers, report)
    # the agent's port, shared with the named barriers' instances
    mux = Mux(port=config.port, report=report)
    async with anyio.create_task_group() as tg:
        named = NamedBarriers(config, mux, tg, report=report, supervisor=supervisor)
        health = functools.partial(
            serve_health, supervisor=supervisor, barrier=named.handle, report=report
        )
        try:
            await tg.start(health, config.listen, config.health_port, lambda: ready)
        except OSError as exc:
            raise ConfigError(
                [
                    "--health-port / PEER_AGENT_HEALTH_PORT: cannot listen on port "
                    f"{config.health_port}: {exc.strerror or exc}"
                ]
            ) from None
        sock = open_port(config)
        tg.start_soon(functools.partial(listener.serve, supervisor=supervisor), sock, mux.serve)
        with sock:
            outcome = await serve_and_wait(
                config, report=report, after_release=stay_up, supervisor=supervisor, mux=mux,
                proven=named.seed,  # what every named barrier starts from
            )  # fmt: skip
            tg.cancel_scope.cancel()
    return outcome


def _cover_named_barriers(peers: int, report: Reporter) -> None:
    """Open files for the start barrier and every named barrier at once (each holds a session
    per member): raised as far as the hard limit allows, and said (at info level: the count
    is a worst case) when that is not enough; ConfigError when it is not enough for the start
    barrier."""
    limit = ensure_fd_limit(peers, barriers=1 + MAX_NAMES, health=HEALTH_FDS)
    covered = max(0, barriers_covered(peers, limit, HEALTH_FDS) - 1)
    if covered < MAX_NAMES:
        line = (
            f"the open-file limit ({limit}) covers {covered} named barriers of {peers} peers "
            f"at once in the worst case, not {MAX_NAMES} (each holds a session per member, and "
            f"the health port up to {HEALTH_FDS} connections): "
            "if the Job runs many at once, raise the container runtime's nofile limit"
        )
        report(LogLine(LogKind.WARNING, line, {"limit": limit}))
