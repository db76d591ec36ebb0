"""Named barriers through the sidecar: `peer-agent barrier NAME` against real sidecars."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from tests.integration.conftest import Agents, finish, wait_for_line

pytestmark = pytest.mark.timeout(90)


def _sidecars(agents: Agents, peers: int) -> list[subprocess.Popen[str]]:
    for i in range(peers):
        agents.publish(i)
    procs = [agents.start("sidecar", i, peers) for i in range(peers)]
    for proc in procs:
        wait_for_line(proc, "serving /readyz")
    return procs


def _client(agents: Agents, i: int, name: str, *more: str) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "agent", "barrier", name, "--listen", agents.address(i), *more]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    agents.procs.append(proc)
    return proc


def test_every_client_returns_once_the_last_pod_asks(agents: Agents) -> None:
    sidecars = _sidecars(agents, 3)
    early = [_client(agents, i, "dataset") for i in range(2)]
    for i in range(2):  # both pods' instances of "dataset" are running
        wait_for_line(sidecars[i], "barrier dataset: topology")
    assert [c.poll() for c in early] == [None, None]  # nobody passes while pod 2 has not asked
    late = _client(agents, 2, "dataset")
    for client in [*early, late]:
        code, _, err = finish(client)
        assert code == 0, err
        assert "released" in err
    # A pod restarted afterwards passes the same name at once: the others still serve it.
    sidecars[1].send_signal(signal.SIGKILL)
    sidecars[1].communicate()
    again = agents.start("sidecar", 1, 3)
    wait_for_line(again, "serving /readyz")
    code, _, err = finish(_client(agents, 1, "dataset"))
    assert code == 0, err


@pytest.mark.parametrize("timeout", ["278h", "1000000s", "1234.5678", "0.5"])
def test_any_timeout_the_client_takes_the_sidecar_takes(agents: Agents, timeout: str) -> None:
    """Every duration the flag accepts, the sidecar accepts: 278h once went as
    ``1e+06``, which the sidecar refused (exit 2)."""
    _sidecars(agents, 1)
    code, _, err = finish(_client(agents, 0, "ckpt", "--timeout", timeout))
    assert code == 0, err


def test_a_pod_that_never_asks_times_out_with_exit_3_naming_it(agents: Agents) -> None:
    _sidecars(agents, 2)
    code, _, err = finish(_client(agents, 0, "ckpt", "--timeout", "1s"))
    assert code == 3, err
    assert "timed out" in err
    assert "example-job-1" in err


def test_bad_names_and_no_sidecar_are_usage_errors(agents: Agents) -> None:
    _sidecars(agents, 1)
    code, _, err = finish(_client(agents, 0, "../etc"))
    assert code == 2
    assert "bad barrier name" in err
    code, _, err = finish(_client(agents, 0, "x", "--health-port", "1"))
    assert code == 2
    assert "no sidecar answers" in err


def test_a_client_stopped_by_sigint_exits_130_whatever_comes_next(agents: Agents) -> None:
    """A SIGINT, then SIGTERMs as fast as one sender can, while the client waits: the first
    decides (130), as in the agent's other commands. It once gave SIGTERM its default action
    back before it waited, and ended by it (outside review 6). Eight tries: the race is per try."""
    sidecars = _sidecars(agents, 2)
    codes = []
    for _ in range(8):
        client = _client(agents, 0, "x")
        wait_for_line(sidecars[0], "barrier x: topology")  # it waits: pod 1 never asks
        loop = f"kill -INT {client.pid}; while kill -TERM {client.pid} 2>/dev/null; do :; done"
        sender = subprocess.Popen(["sh", "-c", loop])
        try:
            code, _, err = finish(client)
        finally:
            sender.kill()
            sender.wait()
        assert "Traceback" not in err, err
        codes.append(code)
    assert codes == [130] * 8, codes
