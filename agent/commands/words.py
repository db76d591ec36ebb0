"""The command line's words: the commands, and the options of a plain command line read without
argparse.

A pod's command line is plain: a command, then ``--flag VALUE``, ``--flag=VALUE`` or a switch,
from the option table (``agent.options``). Importing argparse (and gettext, which it imports)
and building a command's parser cost every start 13 million instructions, 2 ms of CPU before
the first DNS query. Anything else (``--help``, an abbreviated, unknown or misplaced flag, a
value that looks like a flag, a word without a flag, ``lint`` and ``barrier`` with their own
arguments) is left to argparse (``agent.commands.usage``), which parses it or says what is wrong
as it always has. What :func:`plain_options` reads, argparse reads alike (a property test holds
them together).
"""

from __future__ import annotations

from agent.options import OPTIONS, SWITCHES, Command, Option

__all__ = ["COMMANDS", "attach_dash_values", "plain_options"]

# Keyed by text: argparse names a member by its repr in "invalid choice: … (choose from …)".
COMMANDS = {
    Command.WAIT.value: "wait for the barrier, write the output files, exit 0 (init container)",
    Command.RUN.value: "wait for the barrier, then exec CMD with the peer environment "
    "(entrypoint); --exit-barrier: run CMD as a child and leave when every pod's CMD has ended",
    Command.SIDECAR.value: "wait for the barrier, then stay up serving /readyz and late joiners",
    Command.DOCTOR.value: "one diagnostic pass over every peer; never waits",
    "lint": "check Job and Service YAML for wiring mistakes",
    "barrier": "pass the named barrier NAME with every pod (client of this pod's sidecar)",
}
#: the flags that take a value (every option but the switches)
_VALUE_FLAGS = frozenset(o.flag for o in OPTIONS if o.dest not in SWITCHES)
#: each command's flags
_FLAGS: dict[str, dict[str, Option]] = {
    command.value: {o.flag: o for o in OPTIONS if command in o.commands} for command in Command
}


def attach_dash_values(argv: list[str]) -> list[str]:
    """``--timeout -5s`` as ``--timeout=-5s``: argparse takes ``-5s`` for an unknown option and
    answers "expected one argument"; attached, the value reaches the parse that says what is
    wrong with it and names the flag and its variable. A value starting ``--`` stays a flag."""
    out: list[str] = []
    for arg in argv:
        dashed = arg.startswith("-") and not arg.startswith("--") and arg not in ("-", "-h")
        if dashed and out and out[-1] in _VALUE_FLAGS:
            out[-1] = f"{out[-1]}={arg}"
        else:
            out.append(arg)
    return out


def plain_options(argv: list[str]) -> tuple[str, dict[str, str | None]] | None:
    """The command and every option's value (None when not given; a switch given: ``"true"``),
    as argparse would read ``argv`` (after :func:`attach_dash_values`); None when ``argv`` is
    not plain: argparse is to read it."""
    if not argv or (flags_of := _FLAGS.get(argv[0])) is None:
        return None
    values: dict[str, str | None] = dict.fromkeys((o.dest for o in OPTIONS), None)
    words = iter(argv[1:])
    for word in words:
        flag, attached, given = word.partition("=")
        option = flags_of.get(flag)
        if option is None:
            return None
        if option.dest in SWITCHES:
            if attached:  # a switch takes no value: argparse says so
                return None
            values[option.dest] = "true"
            continue
        if not attached:
            following = next(words, None)
            if following is None or following.startswith("-"):  # argparse: expected a value
                return None
            given = following
        values[option.dest] = given
    return argv[0], values
