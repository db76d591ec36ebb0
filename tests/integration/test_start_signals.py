"""A stop signal that comes while the agent starts is acted on, even as a container's PID 1
(which the kernel gives no default action: an unhandled SIGTERM to PID 1 is dropped).

The agent runs as PID 1 of a new PID namespace, held mid-start: its token file is a FIFO, so it
waits there, in its config, long before its event loop, until the test writes the token. The
signal comes while it waits; the test then lets it go on.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(60)

REPO = Path(__file__).resolve().parents[2]
POD = ["--peers", "2", "--index", "0", "--hostname", "j-0", "--job-name", "j",
       "--service", "s", "--namespace", "n", "--timeout", "20s"]  # fmt: skip


def _child(parent: int) -> int:
    """The one process ``unshare --fork`` started: PID 1 inside, this pid outside."""
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    assert len(children) == 1, children
    return int(children[0])


@pytest.mark.parametrize(
    ("mode", "signum", "code"),
    [
        ("wait", signal.SIGTERM, 143),
        ("wait", signal.SIGHUP, 129),
        ("wait", signal.SIGINT, 130),
        # a native sidecar is stopped with SIGTERM when the main container ends: success
        ("sidecar", signal.SIGTERM, 0),
    ],
    ids=["wait-SIGTERM", "wait-SIGHUP", "wait-SIGINT", "sidecar-SIGTERM"],
)
def test_a_stop_signal_during_start_up_ends_pid_1_with_its_code(
    tmp_path: Path, mode: str, signum: signal.Signals, code: int
) -> None:
    token = tmp_path / "token"
    os.mkfifo(token, 0o600)
    argv = [sys.executable, "-m", "agent", mode, *POD, "--token-file", str(token)]
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PEER_AGENT_")}
    unshare = ["unshare", "--pid", "--fork", "--kill-child"]
    with subprocess.Popen(
        [*unshare, *argv], cwd=REPO, env=clean, stderr=subprocess.PIPE, text=True
    ) as proc:
        try:
            # Returns once the agent opened its token file to read it: it is in its config.
            writer = os.open(token, os.O_WRONLY)
            os.kill(_child(proc.pid), signum)
            with os.fdopen(writer, "w") as fifo:
                fifo.write("a-long-enough-shared-secret\n")
            assert proc.stderr is not None
            stderr = proc.stderr.read()
            assert proc.wait(timeout=15) == code, stderr
        finally:
            proc.kill()
    assert "timed out" not in stderr
