"""The command line: parse, run one command, print, exit. The only module that prints or exits."""

from __future__ import annotations

import functools
import gc
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from agent.commands import startsignals
from agent.commands.collecting import collect_garbage_from_now
from agent.commands.drivers import pick
from agent.commands.words import COMMANDS, attach_dash_values, plain_options
from agent.config.model import Config, Driver, LogFormat, LogLevel
from agent.config.parse import load_config
from agent.core.log import LogKind, LogLine, printable
from agent.errors import BarrierTimeout, ConfigError, PeerAgentError
from agent.exitcodes import ExitCode, signal_exit_code
from agent.io.podfacts import read_pod_facts
from agent.io.supervisor import Supervisor
from agent.options import OPTIONS, Command

if TYPE_CHECKING:
    import argparse

    from agent.core.outcome import Outcome

__all__ = ["main"]

_T = TypeVar("_T")
_SECRET_VARIABLE = next(o.env for o in OPTIONS if o.dest == "token")


def _timestamp(now_ns: int | None = None) -> str:
    """``datetime.now(UTC).isoformat(timespec="milliseconds")``, the JSON log's ``ts``, without
    importing datetime (a pod's JSON log was its only user) or building an object a line."""
    ns = time.time_ns() if now_ns is None else now_ns
    seconds, ms = divmod(ns // 1_000_000, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{ms:03d}+00:00"


class _Printer:
    """Log lines on stderr, those below ``lowest`` dropped. Text: ``peer-agent: LEVEL: text``,
    the form of the errors this CLI has always printed (and of compilers' warnings), so
    ``grep 'peer-agent: warning:'`` finds every warning and the words need no legend. JSON:
    one object a line, the level in its ``level`` field."""

    def __init__(
        self, log_format: LogFormat, index: int | None = None, lowest: LogLevel = LogLevel.INFO
    ) -> None:
        self.json = log_format is LogFormat.JSON
        self.index = index
        self.lowest = lowest

    def __call__(self, event: LogLine) -> None:
        if not event.level.at_least(self.lowest):
            return
        if self.json:
            record: dict[str, Any] = {
                "ts": _timestamp(),
                "event": event.kind,
                "level": event.level,
                "msg": event.message,
                "index": self.index,
            }
            record.update(event.fields)
            print(json.dumps(record), file=sys.stderr, flush=True)
        else:  # one line each, whatever a peer's text in it (JSON escapes by itself)
            text = printable(event.message)
            print(f"peer-agent: {event.level}: {text}", file=sys.stderr, flush=True)

    def error(self, error: PeerAgentError) -> None:
        lines: list[str]
        if isinstance(error, ConfigError):
            lines = list(error.problems)
        elif isinstance(error, BarrierTimeout):
            lines = [str(error)] + [f"  missing {m}" for m in error.missing]
            lines += [f"  hint: {h}" for h in error.hints]
        else:
            lines = [str(error)]
        if self.json:
            code = {"exit_code": int(error.exit_code)}
            self(LogLine(LogKind.ERROR, "; ".join(lines), code, level=LogLevel.ERROR))
        else:
            for line in lines:
                print(f"peer-agent: error: {printable(line)}", file=sys.stderr, flush=True)


def _lint(paths: Sequence[str]) -> int:
    from agent.lint import LintInputError, format_finding, lint_paths

    try:
        report = lint_paths(paths, stdin=sys.stdin)
    except LintInputError as exc:
        print(f"peer-agent: error: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    for finding in report.findings:
        print(format_finding(finding))
    # On stderr: standard output stays one finding a line, for grep and CI annotations.
    print(f"peer-agent lint: {report.summary()}", file=sys.stderr)
    return 1 if report.findings else 0


def _named_barrier(args: argparse.Namespace) -> int:
    from agent.commands.namedclient import CLIENT_OPTIONS, pass_named_barrier

    flags = {dest: getattr(args, dest, None) for dest in CLIENT_OPTIONS}
    code, answer = pass_named_barrier(args.name, flags, os.environ)
    for line in answer.splitlines():
        prefix = "" if code == ExitCode.OK else "error: "
        print(f"peer-agent: {prefix}{printable(line)}", file=sys.stderr, flush=True)
    return code


def _freeze_survivors() -> Callable[[], None]:
    """Until the returned thaw is called, what survives a full collection of the cyclic GC is
    frozen, never scanned again: mostly the barrier's long-lived state (a session per member,
    a record per peer). Scanning all of it at every full collection took 4.5 of a coordinator's
    12.4 CPU-s at 10,000 members, 1.5 s of it between the last Arrive and the release."""

    def freeze(phase: str, info: dict[str, int]) -> None:
        if phase == "stop" and info["generation"] == 2:
            gc.freeze()

    def thaw() -> None:  # a sidecar lives on: what is frozen may be garbage one day
        if freeze in gc.callbacks:
            gc.callbacks.remove(freeze)
            gc.unfreeze()

    gc.callbacks.append(freeze)
    return thaw


async def _sidecar(
    config: Config, printer: _Printer, thaw: Callable[[], None], supervisor: Supervisor
) -> Outcome:
    from agent.commands.sidecar import serve_sidecar  # h11: only the sidecar pays for it

    return await serve_sidecar(config, report=printer, supervisor=supervisor, released=thaw)


def _workload_environment(config: Config) -> dict[str, str]:
    from agent.io.outputs import peer_environment

    # The secret is the agent's: the workload and its children never get it (its file's
    # path may stay; the file is for the agent's container to mount or not).
    env = {k: v for k, v in os.environ.items() if k != _SECRET_VARIABLE}
    env.update(peer_environment(config))
    return env


def _run_and_leave_together(
    config: Config, argv: list[str], printer: _Printer, supervisor: Supervisor
) -> int:
    """``run --exit-barrier``: peer-agent stays the workload's parent (agent.commands.leave)."""
    from agent.commands.leave import run_and_leave_together

    if (early := startsignals.received()) is not None:  # before the workload could start
        startsignals.ignore()  # decided: the ones after it change nothing
        return signal_exit_code(early)
    work = functools.partial(
        run_and_leave_together,
        config,
        argv,
        _workload_environment(config),
        report=printer,
        supervisor=supervisor,
    )
    from agent.commands.asyncwait import run_collecting

    return run_collecting(work)


def _driver(config: Config, printer: _Printer) -> Driver:
    """The driver ``agent.commands.drivers`` picks, said at debug for every barrier command: a
    ``--driver selectors`` that a sidecar or an exit barrier cannot take is said, not dropped."""
    driver, why = pick(config)
    printer(LogLine(LogKind.DRIVER, f"driver: {driver}: {why}", {"driver": str(driver)},
                    level=LogLevel.DEBUG))  # fmt: skip
    return driver


def _wait(
    config: Config, printer: _Printer, supervisor: Supervisor
) -> tuple[Outcome | None, int | None]:
    """The start barrier on the driver ``agent.commands.drivers`` picks."""
    if _driver(config, printer) is Driver.SELECTORS:
        from agent.commands.syncwait import run_sync

        return run_sync(config, report=printer, supervisor=supervisor)
    from agent.commands.asyncwait import run_async
    from agent.io.runner import serve_and_wait

    return run_async(lambda: serve_and_wait(config, report=printer, supervisor=supervisor))


def _command(command: str, flags: dict[str, str | None], command_argv: list[str]) -> int:
    config = load_config(command, flags, read_pod_facts(flags))
    printer = _Printer(config.log_format, config.topology.index, config.log_level)
    for warning in config.warnings:
        printer(LogLine(LogKind.WARNING, warning, level=LogLevel.WARNING))
    thaw = _freeze_survivors()
    supervisor = Supervisor(printer)
    try:
        if config.command is Command.DOCTOR:
            from agent.commands.asyncwait import run_async
            from agent.commands.doctor import diagnose  # only its command pays for its imports

            report, signum = run_async(lambda: diagnose(config))
            if signum is not None:
                return signal_exit_code(signum)
            assert report is not None
            print(report.table(), flush=True)
            return ExitCode.OK if report.ok else ExitCode.TIMEOUT
        if config.command is Command.RUN and config.exit_barrier:
            _driver(config, printer)  # anyio
            return _run_and_leave_together(config, command_argv, printer, supervisor)
        if config.command is Command.SIDECAR:
            from agent.commands.asyncwait import run_async

            _driver(config, printer)  # anyio

            _, signum = run_async(lambda: _sidecar(config, printer, thaw, supervisor))
            # A native sidecar is stopped with SIGTERM once the main container ends: success.
            return ExitCode.OK if signum == signal.SIGTERM else signal_exit_code(signum or 0)
        outcome, signum = _wait(config, printer, supervisor)
        if signum is not None:
            return signal_exit_code(signum)
        assert outcome is not None
        from agent.io.outputs import write_outputs  # after the barrier: not on the way to it

        write_outputs(config, outcome)
    except PeerAgentError as error:
        printer.error(error)
        return error.exit_code
    finally:
        thaw()
        if supervisor.bugs:  # survived, but each is a bug to report
            printer(
                LogLine(
                    LogKind.BUGS,
                    f"{supervisor.bugs} connection handler(s) failed with a bug; "
                    "each closed only its own connection (see the bug lines above)",
                    {"handler_bugs": supervisor.bugs},
                    level=LogLevel.WARNING,
                )
            )
    if config.command is Command.RUN:
        env = _workload_environment(config)
        sys.stderr.flush()
        # not agent.commands.workload: it imports anyio (and inspect, ast, dis, tokenize)
        from agent.commands.inherited import PYTHON_IGNORES

        for signum in PYTHON_IGNORES:  # `yes | head -1` must end as it does outside the agent
            signal.signal(signum, signal.SIG_DFL)
        try:
            os.execvpe(command_argv[0], command_argv, env)
        except OSError as exc:
            cannot = f"cannot run {command_argv[0]!r}: {exc.strerror or exc}"
            printer(LogLine(LogKind.ERROR, cannot, level=LogLevel.ERROR))
            return 127 if isinstance(exc, FileNotFoundError) else 126
    return ExitCode.OK


def _parse(argv: list[str]) -> argparse.Namespace:
    """argparse's reading of a command line that is not plain (``agent.commands.words``): it
    parses it, prints the help, or says what is wrong (exit 2). The command comes first (the
    top level has only --help and --version)."""
    from agent.commands.usage import parser_for

    return parser_for(argv[0] if argv and argv[0] in COMMANDS else None).parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command_argv: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, command_argv = argv[:cut], argv[cut + 1 :]
    argv = attach_dash_values(argv)
    plain = plain_options(argv)
    args: argparse.Namespace | None = None
    if plain is None:
        args = _parse(argv)
        plain = args.command, {o.dest: getattr(args, o.dest, None) for o in OPTIONS}
    command, flags = plain
    if command == Command.RUN and not command_argv:
        print(
            "peer-agent: run needs a command: peer-agent run [options] -- CMD ARGS…",
            file=sys.stderr,
        )
        return ExitCode.USAGE
    if command != Command.RUN and command_argv:
        print(f"peer-agent: {command} takes no command after --", file=sys.stderr)
        return ExitCode.USAGE
    try:
        if args is not None and args.command in ("lint", "barrier"):
            collect_garbage_from_now()  # no event loop of its own to wait for
            if args.command == "barrier":  # its stop signals stay recorded: the first decides
                return _named_barrier(args)
            early = startsignals.received()
            if early is None and (early := startsignals.release()) is None:
                return _lint(args.paths)
            startsignals.ignore()  # decided: the ones after it change nothing
            return signal_exit_code(early)
        return _command(command, flags, command_argv)
    except ConfigError as error:
        for problem in error.problems:
            print(f"peer-agent: error: {problem}", file=sys.stderr)
        return ExitCode.USAGE
    except KeyboardInterrupt:
        return signal_exit_code(signal.SIGINT)
    except PeerAgentError as error:
        print(f"peer-agent: error: {error}", file=sys.stderr)
        return error.exit_code
    except Exception:
        import traceback  # a bug only: it costs every start 3 ms (linecache, tokenize)

        traceback.print_exc()
        print("peer-agent: internal error (a bug): please report it", file=sys.stderr)
        return ExitCode.INTERNAL
