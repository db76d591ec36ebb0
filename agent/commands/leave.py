"""``run --exit-barrier``: start together, run the workload as a child, leave together.

Two instances of the same barrier share the agent's port through :class:`agent.io.mux.Mux`:

1. the start barrier, which after its release keeps serving (as a sidecar does), so that a peer
   still in its start barrier is answered while this pod runs its workload or waits to leave;
2. when the workload ends, the exit barrier: the same core with the identity's uid suffixed
   ``/exit`` and ``--exit-timeout`` as its deadline. It releases once every pod's workload has
   ended. Its instance id ends in ``x<code>``, the workload's exit code, so the hellos of the
   exit barrier carry every pod's code: the log names the pods whose workload failed.

Then the process exits with the workload's own code, whatever the exit barrier's fate (a timeout
is logged, not turned into exit 3: the workload's code is what a podFailurePolicy must see).
"""

from __future__ import annotations

import dataclasses
import functools
import signal
from collections.abc import Mapping, Sequence

import anyio

from agent.commands.workload import FORWARDED, Workload, spawn
from agent.config.model import Config, Outputs
from agent.core.log import LogKind, LogLevel, LogLine, Reporter
from agent.core.outcome import Outcome
from agent.errors import BarrierAborted, BarrierTimeout, PeerAgentError, leaf_error
from agent.exitcodes import signal_exit_code
from agent.io import listener
from agent.io.mux import Mux, open_port
from agent.io.outputs import write_outputs
from agent.io.runner import identity_of, serve_and_wait
from agent.io.supervisor import Supervisor
from agent.protocol.wire import Identity

__all__ = ["exit_identity", "run_and_leave_together"]

_UID_LIMIT = 128  # the wire's limit on an identity's uid
_STOPPING = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def exit_identity(start: Identity, code: int) -> Identity:
    """The exit barrier's identity: another instance (uid ``…/exit``), its id carrying ``code``."""
    uid = f"{start.uid[: _UID_LIMIT - 5]}/exit"
    return dataclasses.replace(start, uid=uid, instance=f"{start.instance}x{code}")


def _code_of(instance: str) -> int | None:
    _, x, code = instance.rpartition("x")
    return int(code) if x and code.isdigit() else None


def _failed_peers(config: Config, heard: Mapping[int, str], me: int | None) -> list[str]:
    t = config.topology
    failed = []
    for index, instance in sorted(heard.items()):
        code = _code_of(instance)
        if index != me and code:
            failed.append(f"{t.hostname(index)} (exit code {code})")
    return failed


async def _leave_together(
    config: Config, code: int, mux: Mux, report: Reporter, supervisor: Supervisor
) -> None:
    me = exit_identity(identity_of(config), code)
    # The same core, another deadline, no files: only "every workload has ended" is agreed on.
    exit_config = dataclasses.replace(config, timeout=config.exit_timeout, outputs=Outputs())

    def prefixed(event: LogLine) -> None:
        report(dataclasses.replace(event, message=f"exit barrier: {event.message}"))
        if event.kind is LogKind.RELEASED:
            # Said at the verdict, not after a coordinator's linger for acks: the Job
            # controller may delete this pod then (a failed pod fails the Job), and the user
            # must still read which pod's workload failed.
            _report_failed(config, mux.heard_by(me), report)

    try:
        await serve_and_wait(exit_config, report=prefixed, supervisor=supervisor, mux=mux, me=me)
    except (PeerAgentError, BaseExceptionGroup) as raised:
        error = leaf_error(raised)
        if not isinstance(error, BarrierTimeout | BarrierAborted):
            raise
        lines = [str(error)] + [f"missing {m}" for m in getattr(error, "missing", ())]
        failed = "exit barrier: " + "; ".join(lines)
        report(LogLine(LogKind.EXIT_BARRIER_FAILED, failed, level=LogLevel.WARNING))


def _report_failed(config: Config, heard: Mapping[int, str], report: Reporter) -> None:
    failed = _failed_peers(config, heard, config.topology.index)
    if failed:
        report(
            LogLine(
                LogKind.PEERS_FAILED,
                f"exit barrier: the workload failed in {len(failed)} other pod(s): "
                + ", ".join(failed),
                {"failed": failed},
                level=LogLevel.WARNING,
            )
        )


async def run_and_leave_together(
    config: Config,
    argv: Sequence[str],
    env: Mapping[str, str],
    *,
    report: Reporter,
    supervisor: Supervisor,
) -> int:
    """Pass the start barrier, run ``argv`` as a child, hold the exit barrier; the workload's
    exit code (128+n when signal n ended it; 127/126 when it could not start), or 128+n when
    signal n stopped peer-agent before the workload ran.

    Raises ConfigError, BarrierTimeout or BarrierAborted from the start barrier.
    """
    sock = open_port(config)
    mux = Mux()
    workload = Workload()
    code: int | None = None
    stopped_by: int | None = None

    async def after(outcome: Outcome) -> None:
        nonlocal code
        write_outputs(config, outcome)
        try:
            workload.started(spawn(argv, env))
        except OSError as exc:
            cannot = f"cannot run {argv[0]!r}: {exc.strerror or exc}"
            report(LogLine(LogKind.ERROR, cannot, level=LogLevel.ERROR))
            code = 127 if isinstance(exc, FileNotFoundError) else 126
        else:
            report(LogLine(LogKind.WORKLOAD, f"workload started (pid {workload.pid})"))
            await workload.ended.wait()
            code = workload.code
            assert code is not None
        timeout = f"up to {config.exit_timeout:g}s" if config.exit_timeout else "no time limit"
        report(
            LogLine(
                LogKind.WORKLOAD_ENDED,
                f"workload exited with code {code}; waiting for every pod's workload to end "
                f"({timeout})",
                {"exit_code": code},
            )
        )
        await _leave_together(config, code, mux, report, supervisor)

    with sock, anyio.open_signal_receiver(*FORWARDED, signal.SIGCHLD) as signals:
        async with anyio.create_task_group() as tg:

            async def watch() -> None:
                nonlocal stopped_by
                async for signum in signals:
                    if signum == signal.SIGCHLD:
                        workload.reap()
                    elif workload.running:
                        workload.forward(signum)
                    elif signum not in (signal.SIGUSR1, signal.SIGUSR2):
                        # before the workload: stop as `run` does; after it: stop waiting
                        stopped_by = stopped_by or int(signum)
                        tg.cancel_scope.cancel()

            tg.start_soon(watch)
            tg.start_soon(functools.partial(listener.serve, supervisor=supervisor), sock, mux.serve)
            await serve_and_wait(
                config,
                report=report,
                supervisor=supervisor,
                mux=mux,
                after_release=after,
            )
            tg.cancel_scope.cancel()
        if code is not None:
            # The workload's code is decided: a SIGTERM from now on (the Job controller deleting
            # the pods of a Job that another pod's failure just failed) must not turn it into a
            # death by signal. Blocked while anyio still holds the handlers (it restores the
            # defaults as it lets go), ignored after. A mask is the calling thread's: this holds
            # because the agent has no other thread (tests/integration/test_exit_barrier.py).
            signal.pthread_sigmask(signal.SIG_BLOCK, _STOPPING)
    if code is not None:
        for signum in _STOPPING:
            signal.signal(signum, signal.SIG_IGN)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOPPING)
        return code
    assert stopped_by is not None
    return signal_exit_code(stopped_by)
