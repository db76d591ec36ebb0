"""The command line's edges as a user meets them: a real ``python -m agent`` process, its exit
code and every line it prints."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(60)

REPO = Path(__file__).resolve().parents[2]
# Everything else a pod would derive is given, so the timeout is the only problem.
POD = ["--peers", "2", "--index", "0", "--hostname", "j-0", "--job-name", "j",
       "--service", "s", "--namespace", "n"]  # fmt: skip
NEGATIVE = (
    "peer-agent: error: --timeout / PEER_AGENT_TIMEOUT: '-5s' is negative: give 0 or more "
    "(0 means no limit)\n"
)


def _agent(*argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PEER_AGENT_")}
    return subprocess.run(
        [sys.executable, "-m", "agent", *argv],
        cwd=REPO,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.mark.parametrize(
    ("argv", "env"),
    [
        (["wait", *POD, "--timeout", "-5s"], {}),
        (["run", *POD, "--timeout", "-5s", "--", "true"], {}),
        (["wait", *POD], {"PEER_AGENT_TIMEOUT": "-5s"}),
    ],
    ids=["flag", "flag before a workload", "variable"],
)
def test_a_negative_timeout_is_one_line_naming_the_flag_and_variable(
    argv: list[str], env: dict[str, str]
) -> None:
    done = _agent(*argv, **env)
    assert (done.returncode, done.stderr, done.stdout) == (2, NEGATIVE, "")


def test_a_bad_barrier_name_is_refused_before_any_connection() -> None:
    """A sidecar's health port is listening; the client names the bad name and the allowed
    characters, exit 2, and never connects (the listener's queue stays empty)."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        done = _agent("barrier", "bad name!", "--health-port", str(port), "--timeout", "1s")
        listener.setblocking(False)
        with pytest.raises(BlockingIOError):
            listener.accept()
    assert done.returncode == 2
    assert done.stderr == (
        "peer-agent: argument NAME: bad barrier name 'bad name!': use 1 to 63 of A-Z a-z 0-9 "
        ". _ -, the first a letter or digit (see peer-agent --help)\n"
    )


@pytest.mark.parametrize(
    ("argv", "env"),
    [
        (["run", *POD, "--exit-barrier", "--exit-led-by", "1", "--exit-grace", "-3s"], {}),
        (["run", *POD, "--exit-barrier", "--exit-led-by", "1"], {"PEER_AGENT_EXIT_GRACE": "-3s"}),
        (["run", *POD, "--exit-barrier", "--exit-led-by", "1", "--exit-grace", "99999999h"], {}),
    ],
    ids=["negative flag", "negative variable", "too long"],
)
def test_a_bad_exit_grace_does_not_say_that_0_means_no_limit(
    argv: list[str], env: dict[str, str]
) -> None:
    """Review10: for --exit-grace 0 is SIGKILL at once (docs/configuration.md), the opposite of
    no limit; a user who believes the error and sets 0 has every follower's workload killed
    without a grace. The duration errors say "(0 means no limit)" for every option."""
    done = _agent(*argv, "--", "true", **env)
    assert done.returncode == 2
    assert done.stderr.startswith("peer-agent: error: --exit-grace / PEER_AGENT_EXIT_GRACE: ")
    assert done.stderr.count("\n") == 1
    assert "no limit" not in done.stderr, done.stderr


@pytest.mark.parametrize("command", ["wait", "sidecar"])
def test_a_run_only_variable_does_not_send_wait_to_a_flag_it_does_not_take(command: str) -> None:
    """Review10: ``PEER_AGENT_EXIT_LED_BY`` is ``run``'s (``--exit-led-by`` is refused by
    ``wait`` and ``sidecar``: "unrecognized arguments"), and ``PEER_AGENT_EXIT_BARRIER=true``
    in their environment is ignored. Seen: ``PEER_AGENT_EXIT_LED_BY=0 peer-agent wait`` (a
    variable set for every container of the pod) exits 2 with "--exit-led-by /
    PEER_AGENT_EXIT_LED_BY: needs --exit-barrier: …", and ``wait --exit-barrier`` is refused
    in turn: the init container cannot start, whatever the user does but unset it (``sidecar``
    likewise)."""
    extra: list[str] = []
    if command == "sidecar":  # a port of its own, free now, for /readyz
        with socket.create_server(("127.0.0.1", 0)) as listener:
            extra = ["--health-port", str(listener.getsockname()[1])]
    done = _agent(
        command, *POD, *extra, "--timeout", "1s", "--dns-server", "127.0.0.1:1",
        PEER_AGENT_EXIT_LED_BY="0", PEER_AGENT_EXIT_GRACE="-1s",
    )  # fmt: skip
    assert "needs --exit-barrier" not in done.stderr, done.stderr
    assert "PEER_AGENT_EXIT_GRACE" not in done.stderr, done.stderr
    assert "DNS error" in done.stderr, done.stderr  # it ran: the timeout is its one problem
