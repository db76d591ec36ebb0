"""Usage errors the command line reports itself: one line, exit 2."""

from __future__ import annotations

import pytest

from agent.commands.cli import COMMANDS, main

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
