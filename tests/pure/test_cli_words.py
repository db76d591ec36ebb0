"""A plain command line is read without argparse (``agent.commands.words``), exactly as argparse
reads it; anything else is left to argparse."""

from __future__ import annotations

import contextlib
import io

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from agent.commands.usage import parser_for
from agent.commands.words import COMMANDS, attach_dash_values, plain_options
from agent.options import OPTIONS

pytestmark = pytest.mark.timeout(60)

_FLAGS = [o.flag for o in OPTIONS] + ["--pee", "--bogus", "--help", "-h", "--version"]
_VALUES = ["3", "", "-5s", "--", "--peers", "a=b", "x y", "é", "-", "--x=1", "0"]
_WORDS = (
    st.sampled_from(_FLAGS)
    | st.sampled_from(_VALUES)
    | st.builds(lambda f, v: f"{f}={v}", st.sampled_from(_FLAGS), st.sampled_from(_VALUES))
)
#: a flag and a value as two words: most command lines drawn from these are plain
_PAIRS = st.tuples(st.sampled_from(_FLAGS), st.sampled_from(_VALUES)).map(list)


def _argparse(argv: list[str]) -> tuple[str, dict[str, str | None]] | None:
    """What argparse makes of ``argv``: the command and every option's value; None for help,
    a version or a usage error."""
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            args = parser_for(argv[0] if argv and argv[0] in COMMANDS else None).parse_args(argv)
    except SystemExit:
        return None
    return args.command, {o.dest: getattr(args, o.dest, None) for o in OPTIONS}


@given(
    st.sampled_from([*COMMANDS, "bogus"]),
    st.lists(_PAIRS | _WORDS.map(lambda word: [word]), max_size=6),
)
@example("wait", [["--topology=--"]])  # found by Hypothesis: argparse's own quirk
def test_what_is_read_without_argparse_is_what_argparse_reads(
    command: str, words: list[list[str]]
) -> None:
    argv = attach_dash_values([command, *(word for group in words for word in group)])
    plain = plain_options(argv)
    if plain is not None:
        assert plain == _argparse(argv) or _argparse_drops_a_dash_value(argv)


def _argparse_drops_a_dash_value(argv: list[str]) -> bool:
    """argparse reads ``--flag=--`` as an empty list (it strips ``--`` from a value): no value
    a flag can take. The plain reader keeps ``--``, and the flag's check then names it (exit 2,
    ``test_a_dash_value_is_named_by_its_flag``)."""
    return any(word.endswith("=--") for word in argv)


def test_a_dash_value_is_named_by_its_flag() -> None:
    """Where argparse would hand on an empty list, the plain reader gives the value as written."""
    plain = plain_options(["wait", "--topology=--"])
    assert plain is not None and plain[1]["topology"] == "--"
    assert _argparse(["wait", "--topology=--"]) != plain  # the quirk the property allows for


@pytest.mark.parametrize(
    "argv",
    [
        ["wait", "--peers", "3", "--index", "0", "--timeout=30s", "--hostfile", "/tmp/h"],
        ["run", "--exit-barrier", "--peers=4", "--port", "29300"],
        ["sidecar", "--health-port", "29301", "--log-format", "json"],
        ["doctor"],
    ],
)
def test_a_pods_command_line_is_plain(argv: list[str]) -> None:
    """What pods run: read without argparse (importing it cost every start 2 ms of CPU)."""
    plain = plain_options(argv)
    assert plain is not None
    assert plain == _argparse(argv)


@pytest.mark.parametrize(
    "argv",
    [
        ["wait", "--help"],
        ["wait", "--pee", "3"],  # argparse takes an unambiguous abbreviation
        ["wait", "--peers"],
        ["wait", "--peers", "--index", "0"],
        ["wait", "extra"],
        ["run", "--exit-barrier=yes"],
        ["wait", "--exit-barrier"],  # run's switch
        ["lint", "job.yaml"],
        ["barrier", "ckpt"],
        [],
    ],
)
def test_anything_else_is_left_to_argparse(argv: list[str]) -> None:
    assert plain_options(argv) is None
