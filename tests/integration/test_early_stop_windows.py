"""Stopped while it starts (outside review 8): once a stop signal decides the exit code before
the workload started, the ones after it can neither kill the agent nor change its code.

The agent runs under its own entry point with two calls wrapped, so that each signal comes at
exactly its moment (as test_stop_signal_windows.py does): a SIGINT while it reads its config
(recorded: its event loop does not listen yet), and a SIGTERM, the next of a storm, as the CLI
works out the exit code the SIGINT decided.
"""

from __future__ import annotations

import pytest

from tests.integration.conftest import Agents, finish

pytestmark = pytest.mark.timeout(60)

_SIGINT_AS_IT_STARTS_THEN_SIGTERM = (
    "import os, signal; import agent.commands.cli as cli\n"
    "from agent.__main__ import main\n"
    "load, code_of = cli.load_config, cli.signal_exit_code\n"
    "def load_after_sigint(*args, **kwargs):\n"
    "    os.kill(os.getpid(), signal.SIGINT)\n"
    "    return load(*args, **kwargs)\n"
    "def code_then_sigterm(signum):\n"
    "    os.kill(os.getpid(), signal.SIGTERM)\n"
    "    return code_of(signum)\n"
    "cli.load_config = load_after_sigint; cli.signal_exit_code = code_then_sigterm\n"
    "os._exit(main())"
)


@pytest.mark.parametrize(
    "command",
    [["run", "--exit-barrier", "--", "true"], ["run", "--", "true"], ["wait"]],
    ids=["run-exit-barrier", "run", "wait"],
)
def test_a_sigint_while_it_starts_decides_whatever_comes_next(
    agents: Agents, command: list[str]
) -> None:
    """A SIGINT while the agent starts decides: 130. `run --exit-barrier` gave the stop signals
    their default action back on its way out, so the next SIGTERM of a storm killed it (-15, a
    container's 143) unless it was PID 1; from outside, three senders of SIGTERM as fast as they
    can: -15 in 2 of 20 runs."""
    agents.publish(0)
    mode, *rest = command
    proc = agents.start(
        mode, 0, 2, "--timeout", "20s", *rest, entry=("-c", _SIGINT_AS_IT_STARTS_THEN_SIGTERM)
    )
    code, _, err = finish(proc)
    assert code == 130, err[-2000:]
