"""Usage errors the command line reports itself: one line, exit 2."""

from __future__ import annotations

import pytest

from agent.commands.cli import main
from agent.commands.words import COMMANDS
from agent.config.parse import DURATION_FORMS
from agent.options import OPTIONS

pytestmark = pytest.mark.timeout(10)


def test_an_unknown_command_is_told_the_commands_by_name(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["bogus"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("peer-agent: argument command: invalid choice: 'bogus' (choose from ")
    assert err.endswith(") (see peer-agent --help)\n") and err.count("\n") == 1
    listed = err.split("(choose from ", 1)[1].split(")", 1)[0]
    # Python 3.11 quotes each choice, later versions do not; neither shows an enum's repr.
    assert [name.strip("'") for name in listed.split(", ")] == list(COMMANDS)


def test_run_help_shows_the_workload_after_a_double_dash(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["run", "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "usage: peer-agent run [options] -- CMD ARGS…"
    assert "CMD ARGS…: the workload, after --." in " ".join(out.split())


@pytest.mark.parametrize("command", ["wait", "run", "sidecar", "doctor", "barrier"])
def test_every_command_with_a_timeout_lists_the_durations_it_accepts(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main([command, "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert f"Durations: {DURATION_FORMS}; 0 means no limit." in help_text


def test_a_negative_timeout_names_the_flag_and_variable_in_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """argparse alone took ``-5s`` for an option: "expected one argument". ``barrier``
    checks its options before it connects, so no sidecar is needed to see the error."""
    for option in OPTIONS:
        monkeypatch.delenv(option.env, raising=False)
    assert main(["barrier", "x", "--timeout", "-5s"]) == 2
    captured = capsys.readouterr()
    assert captured.err == (
        "peer-agent: error: --timeout / PEER_AGENT_TIMEOUT: '-5s' is negative: "
        "give 0 or more (0 means no limit)\n"
    )
    assert captured.out == ""


@pytest.mark.parametrize("name", ["bad name!", "../etc", "_x", "", "a" * 64, "é"])
def test_a_bad_barrier_name_is_named_with_the_allowed_characters(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["barrier", name])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err == (
        f"peer-agent: argument NAME: bad barrier name {name!r}: use 1 to 63 of A-Z a-z 0-9 "
        ". _ -, the first a letter or digit (see peer-agent --help)\n"
    )


@pytest.mark.parametrize("columns", [60, 160])
def test_help_fits_the_terminal_width_columns_gives(
    columns: int, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """As argparse sizes it (the agent sizes it without importing shutil)."""
    monkeypatch.setenv("COLUMNS", str(columns))
    with pytest.raises(SystemExit):
        main(["wait", "--help"])
    widest = max(len(line) for line in capsys.readouterr().out.splitlines())
    assert columns - 20 < widest <= columns - 2
