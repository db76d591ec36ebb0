"""``run --exit-barrier``: start together, run the workload as a child, leave together.

Two instances of the same barrier share the agent's port through :class:`agent.io.mux.Mux`:

1. the start barrier, which after its release keeps serving (as a sidecar does), so that a peer
   still in its start barrier is answered while this pod runs its workload or waits to leave;
2. when the workload ends, the exit barrier: the same core with the identity's barrier
   ``exit`` and ``--exit-timeout`` as its deadline. It releases once every pod's workload has
   ended. Its identity carries the workload's exit code (``Identity.exit_code``), so the
   hellos of the exit barrier carry every pod's code: at the release the log names the pods
   whose workload failed, as the peers this pod reached said it (``failed_peers``).

With ``--exit-led-by I`` (MPI: a launcher and ``sshd`` workers that never end by themselves),
pod I's exit barrier beginning stops every other pod's workload (``agent.commands.follow``),
and those pods' code is pod I's.

Then the process exits with the workload's own code (or the leader's, above), whatever the exit
barrier's fate (a timeout is logged, not turned into exit 3: the workload's code is what a
podFailurePolicy must see).
"""

from __future__ import annotations

import dataclasses
import functools
import os
import signal
from collections.abc import Mapping, Sequence

import anyio

from agent.commands import startsignals
from agent.commands.follow import LeaderWatch, stop_when_led
from agent.commands.workload import FORWARDED, Workload, spawn
from agent.config.model import Config, Outputs
from agent.core.exitlead import Follower
from agent.core.log import LogKind, LogLevel, LogLine, Reporter
from agent.core.outcome import Outcome
from agent.core.seeded import Proof, Proven
from agent.errors import BarrierAborted, BarrierTimeout, PeerAgentError, leaf_error
from agent.exitcodes import signal_exit_code
from agent.io import listener
from agent.io.heard import Heard
from agent.io.mux import Mux, open_port
from agent.io.outputs import write_outputs
from agent.io.procenv import scrub
from agent.io.runner import identity_of, resolver_for, serve_and_wait
from agent.io.supervisor import Supervisor
from agent.options import OPTIONS
from agent.protocol.wire import EXIT_BARRIER, Identity

__all__ = ["exit_identity", "failed_peers", "run_and_leave_together"]

_SECRET_VARIABLE = next(o.env for o in OPTIONS if o.dest == "token")


def exit_identity(start: Identity, code: int) -> Identity:
    """The exit barrier's identity: the same process in barrier ``exit``, with its workload's
    exit ``code``."""
    return dataclasses.replace(start, barrier=EXIT_BARRIER, exit_code=code)


def failed_peers(config: Config, heard: Heard) -> list[str]:
    """The other pods whose workload failed, with its code, as each said it in its exit
    barrier's hello: only the instance this pod reached, at the address it reached it at (an
    address DNS gave; with a token, proven). A hello from anyone else, whatever it claims, is
    not read: neither a failure nor a success can be forged."""
    t = config.topology
    failed = []
    for peer in heard.reached or ():
        said = heard.said_by(peer) if peer.index != t.index else None
        if said is not None and said.exit_code:
            failed.append(f"{t.hostname(peer.index)} (exit code {said.exit_code})")
    return failed


async def _leave_together(
    config: Config,
    code: int,
    mux: Mux,
    report: Reporter,
    supervisor: Supervisor,
    seed: Mapping[int, Proven],
) -> None:
    me = exit_identity(identity_of(config), code)
    # The same core, another deadline, no files: only "every workload has ended" is agreed on.
    exit_config = dataclasses.replace(config, timeout=config.exit_timeout, outputs=Outputs())
    heard = Heard(me)

    def prefixed(event: LogLine) -> None:
        report(dataclasses.replace(event, message=f"exit barrier: {event.message}"))
        if event.kind is LogKind.RELEASED:
            # Said at the verdict, not after a coordinator's linger for acks: the Job
            # controller may delete this pod then (a failed pod fails the Job), and the user
            # must still read which pod's workload failed.
            _report_failed(failed_peers(config, heard), report)

    try:
        await serve_and_wait(
            exit_config, report=prefixed, supervisor=supervisor, mux=mux, me=me, heard=heard,
            seed=seed,  # where the start barrier reached each peer: tried first, without DNS
        )  # fmt: skip
    except (PeerAgentError, BaseExceptionGroup) as raised:
        error = leaf_error(raised)
        if not isinstance(error, BarrierTimeout | BarrierAborted):
            raise
        lines = [str(error)] + [f"missing {m}" for m in getattr(error, "missing", ())]
        failed = "exit barrier: " + "; ".join(lines)
        report(LogLine(LogKind.EXIT_BARRIER_FAILED, failed, level=LogLevel.WARNING))
        # the pods it did reach may have failed: a timeout must not hide what it knows
        _report_failed(failed_peers(config, heard), report)


def _report_failed(failed: list[str], report: Reporter) -> None:
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


def _led(config: Config) -> tuple[LeaderWatch | None, Follower | None]:
    """With ``--exit-led-by`` in a pod other than the leader: what watches for the leader's
    end, and the stop it sets off."""
    leader, index = config.exit_led_by, config.topology.index
    if leader is None or index is None or index == leader:
        return None, None
    name = config.topology.fqdn(leader)
    watch = LeaderWatch(identity_of(config), leader, name, resolver_for(config))
    return watch, Follower(config.exit_grace)


async def _until_ended(
    workload: Workload, follower: Follower | None, watch: LeaderWatch | None, report: Reporter
) -> int:
    """The pod's code once the workload has ended: its own, or with a leader, the leader's
    when the leader's end stopped it (``agent.core.exitlead``)."""
    if follower is None or watch is None:
        await workload.ended.wait()
        assert workload.code is not None
        return workload.code
    async with anyio.create_task_group() as tg:
        tg.start_soon(stop_when_led, watch, follower, workload, report)
        await workload.ended.wait()
        tg.cancel_scope.cancel()
    assert workload.code is not None
    follower.workload_ended(workload.code)
    if follower.stopped:
        report(
            LogLine(
                LogKind.WORKLOAD_STOPPED,
                f"workload stopped (its own code {workload.code}); this pod's code is the "
                f"leader's: {follower.exit_code()}",
                {"workload_exit_code": workload.code, "exit_code": follower.exit_code()},
            )
        )
    return follower.exit_code()


def _forget_the_token(report: Reporter) -> None:
    """The token (read into the config already) leaves this process's own environment, as the
    workload's did: as the workload's parent, the agent's is the workload's to read."""
    if _SECRET_VARIABLE not in os.environ:
        return
    try:
        scrub(_SECRET_VARIABLE)
    except OSError as exc:
        report(
            LogLine(
                LogKind.WARNING,
                f"{_SECRET_VARIABLE} stays readable in /proc/<pid>/environ of this "
                f"process, the workload's parent ({exc}): prefer --token-file",
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
    _forget_the_token(report)  # the workload may read its parent's environment
    sock = open_port(config)
    mux = Mux(port=config.port, report=report)
    workload = Workload()
    leader_watch, follower = _led(config)
    code: int | None = None
    stopped_by: int | None = None
    proof: Proof = dict  # the start barrier's, read when the exit barrier begins

    def proven(given: Proof) -> None:
        nonlocal proof
        proof = given

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
            code = await _until_ended(workload, follower, leader_watch, report)
        # A workload the leader's end stopped did not fail: its pod tells its peers 0, so their
        # logs name only the pods whose workload failed by itself (the leader among them).
        stopped = follower is not None and follower.stopped
        said = 0 if stopped else code
        timeout = f"up to {config.exit_timeout:g}s" if config.exit_timeout else "no time limit"
        ended = "" if stopped else f"workload exited with code {code}; "
        report(
            LogLine(
                LogKind.WORKLOAD_ENDED,
                f"{ended}waiting for every pod's workload to end ({timeout})",
                {"exit_code": code},
            )
        )
        await _leave_together(config, said, mux, report, supervisor, proof())

    with sock, anyio.open_signal_receiver(*FORWARDED, signal.SIGCHLD) as signals:
        startsignals.coalesce_wakeups(*FORWARDED, signal.SIGCHLD)
        # One that came after the CLI's look and before this receiver listened was only recorded.
        stopped_by = startsignals.received()
        if stopped_by is None:
            async with anyio.create_task_group() as tg:

                async def watch() -> None:
                    nonlocal stopped_by
                    async for signum in signals:
                        # any signal reaps: a storm's full wakeup pipe may drop SIGCHLD's byte
                        workload.reap()
                        if signum == signal.SIGCHLD:
                            continue
                        if workload.running:
                            workload.forward(signum)
                        elif signum not in (signal.SIGUSR1, signal.SIGUSR2):
                            # before the workload: stop as `run` does; after it: stop waiting
                            stopped_by = stopped_by or int(signum)
                            # Decided: blocked from here, a storm of stop signals no longer
                            # floods the loop that must wind down (each one a callback per
                            # turn: 80,000 a turn held the agent past 30 s).
                            startsignals.hold_off()
                            tg.cancel_scope.cancel()

                tg.start_soon(watch)
                tg.start_soon(
                    functools.partial(listener.serve, supervisor=supervisor), sock, mux.serve
                )
                await serve_and_wait(
                    config,
                    report=report,
                    supervisor=supervisor,
                    mux=mux,
                    after_release=after,
                    heard=leader_watch,
                    proven=proven,
                )
                tg.cancel_scope.cancel()
        # The code is decided (the workload's, or the stop signal's before it ran): a stop signal
        # from now on (the Job controller deleting the pods of a Job that another pod's failure
        # just failed) must not turn it into a death by signal; blocked while anyio still holds
        # the handlers, ignored after.
        startsignals.hold_off()
    startsignals.ignore()
    if code is not None:
        return code
    assert stopped_by is not None
    return signal_exit_code(stopped_by)
