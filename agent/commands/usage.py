"""The command line's grammar as argparse parses it: each command's options, the help (with
what a duration and ``run``'s workload are), a barrier's name, and every usage error. A plain
command line is read without it (``agent.commands.words``)."""

from __future__ import annotations

import argparse
import functools
import os
import sys
from typing import Any, NoReturn

from agent import __version__
from agent.commands.words import COMMANDS
from agent.config.parse import DURATION_FORMS
from agent.exitcodes import ExitCode
from agent.options import OPTIONS, SWITCHES, Command

__all__ = ["DURATIONS_HELP", "NAME_RULE", "WORKLOAD_HELP", "barrier_name", "parser_for"]

DURATIONS_HELP = f"Durations: {DURATION_FORMS}; 0 means no limit."
WORKLOAD_HELP = (
    "CMD ARGS…: the workload, after --. Once the barrier passes it is exec'd with RANK, "
    "WORLD_SIZE, MASTER_ADDR and PEER_HOSTS set (with --exit-barrier: run as a child, and "
    "peer-agent exits with its code once every pod's has ended; with --exit-led-by I, pod I's "
    "end stops the others', which then exit with pod I's code)."
)
NAME_RULE = "1 to 63 of A-Z a-z 0-9 . _ -, the first a letter or digit"


def barrier_name(text: str) -> str:
    """NAME of ``barrier NAME``, checked before any connection (argparse's ``type``): a sidecar
    would refuse it too, but the user would first need one running to learn why."""
    from agent.commands.named import NAME

    if not NAME.fullmatch(text):
        raise argparse.ArgumentTypeError(f"bad barrier name {text!r}: use {NAME_RULE}")
    return text


def _columns() -> int:
    """The terminal's width as ``shutil.get_terminal_size`` tells it (``COLUMNS``, else the
    terminal on stdout, else 80), without importing shutil and the compression modules it
    imports: argparse makes a formatter for every ``add_argument``, and with no width given
    each asks shutil (1 ms of every start, a help shown or not). Asked once per parser."""
    try:
        columns = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


class _Parser(argparse.ArgumentParser):
    def __init__(self, *, width: int, **kwargs: Any) -> None:
        # width: the terminal's, less argparse's own margin
        formatter = functools.partial(argparse.HelpFormatter, width=width)
        super().__init__(formatter_class=formatter, **kwargs)

    def error(self, message: str) -> NoReturn:
        # One line, exit 2, as for every other usage error.
        self.exit(ExitCode.USAGE, f"peer-agent: {message} (see peer-agent --help)\n")


def parser_for(chosen: str | None = None) -> argparse.ArgumentParser:
    """The parser; given the command being run, only that command and its options are added:
    the others' hundred ``add_argument`` calls were a tenth of the CPU before the first DNS
    query, and each command's parser looked for message catalogues on disk (gettext)."""
    width = _columns() - 2
    parser = _Parser(
        prog="peer-agent", description="Barrier for the pods of an Indexed Job.", width=width
    )
    parser.add_argument("--version", action="version", version=f"peer-agent {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name, help_text in COMMANDS.items():
        if chosen is not None and name != chosen:
            continue
        command = sub.add_parser(name, help=help_text, description=help_text, width=width)
        if name == "lint":
            command.add_argument("paths", nargs="+", metavar="FILE|DIR|-")
            continue
        command.epilog = DURATIONS_HELP
        if name == Command.RUN:
            # The workload comes after "--", which main() cuts off before argparse sees it.
            command.usage = "%(prog)s [options] -- CMD ARGS…"
            command.epilog = f"{WORKLOAD_HELP} {DURATIONS_HELP}"
        if name == "barrier":
            from agent.commands.namedclient import CLIENT_OPTIONS

            command.add_argument("name", metavar="NAME", type=barrier_name, help=NAME_RULE)
            for option in OPTIONS:
                if option.dest in CLIENT_OPTIONS:
                    help_text = {
                        "timeout": "how long to wait (default: the sidecar's --timeout)",
                        "listen": "the sidecar's address (default 127.0.0.1)",
                    }.get(option.dest, "the sidecar's")
                    command.add_argument(
                        option.flag,
                        dest=option.dest,
                        metavar="VALUE",
                        help=f"{help_text} [{option.env}]",
                    )
            continue
        for option in OPTIONS:
            if name in option.commands and option.dest in SWITCHES:
                command.add_argument(
                    option.flag,
                    dest=option.dest,
                    action="store_const",
                    const="true",
                    help=f"{option.help} [{option.env}=true]",
                )
            elif name in option.commands:
                command.add_argument(
                    option.flag,
                    dest=option.dest,
                    metavar="VALUE",
                    help=f"{option.help} [{option.env}]",
                )
    return parser
