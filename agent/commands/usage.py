"""The command line's words that argparse cannot check by itself: a value that starts with a
dash, a barrier's name, and the help that says what a duration and ``run``'s workload are."""

from __future__ import annotations

import argparse

from agent.config.parse import DURATION_FORMS
from agent.options import OPTIONS, SWITCHES

__all__ = ["DURATIONS_HELP", "NAME_RULE", "WORKLOAD_HELP", "attach_dash_values", "barrier_name"]

#: the flags that take a value (every option but the switches)
_VALUE_FLAGS = frozenset(o.flag for o in OPTIONS if o.dest not in SWITCHES)
DURATIONS_HELP = f"Durations: {DURATION_FORMS}; 0 means no limit."
WORKLOAD_HELP = (
    "CMD ARGS…: the workload, after --. Once the barrier passes it is exec'd with RANK, "
    "WORLD_SIZE, MASTER_ADDR and PEER_HOSTS set (with --exit-barrier: run as a child, and "
    "peer-agent exits with its code once every pod's has ended)."
)
NAME_RULE = "1 to 63 of A-Z a-z 0-9 . _ -, the first a letter or digit"


def barrier_name(text: str) -> str:
    """NAME of ``barrier NAME``, checked before any connection (argparse's ``type``): a sidecar
    would refuse it too, but the user would first need one running to learn why."""
    from agent.commands.named import NAME

    if not NAME.fullmatch(text):
        raise argparse.ArgumentTypeError(f"bad barrier name {text!r}: use {NAME_RULE}")
    return text


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
