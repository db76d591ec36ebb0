"""What ``--help`` tells a user about ``--driver``'s default, against the driver that runs.

Review 12: the selectors driver is the default for ``wait`` and ``run``'s start barrier
(``SELECTORS_BY_DEFAULT``, docs/architecture.md "Two drivers", docs/configuration.md), and the
debug log says so (``driver: selectors: the config needs nothing else (--driver auto)``); but
``peer-agent wait --help`` still says ``auto (default; anyio for now)``, so a user reading the
help to learn how the pod runs (or how to go back) is told the opposite of what runs.

Reproduce: ``python -m agent wait --help | grep -A1 -- --driver`` next to
``python -m agent wait --peers 1 --index 0 --hostname j-0 --job-name j --service s
--namespace n --listen 127.0.0.1 --port 23999 --dns-server 127.0.0.1:9 --timeout 1s
--log-level debug`` (its first line names the driver).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(60)

REPO = Path(__file__).resolve().parents[2]


def _agent(*argv: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PEER_AGENT_")}
    return subprocess.run(
        [sys.executable, "-m", "agent", *argv],
        cwd=REPO,
        env=clean,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_the_help_names_the_default_driver_that_runs() -> None:
    run = _agent(
        "wait", "--peers", "1", "--index", "0", "--hostname", "j-0", "--job-name", "j",
        "--service", "s", "--namespace", "n", "--listen", "127.0.0.1", "--port", "23999",
        "--dns-server", "127.0.0.1:9", "--timeout", "1s", "--log-level", "debug",
    )  # fmt: skip
    assert "driver: selectors: the config needs nothing else (--driver auto)" in run.stderr
    shown = " ".join(_agent("wait", "--help").stdout.split())
    driver = shown[shown.rindex("--driver VALUE") :][:160]
    assert "anyio for now" not in driver, driver
