"""Sidecar mode: /readyz gates the main container; pods restarted after the release pass at once."""

from __future__ import annotations

import http.client
import signal
import subprocess

import pytest

from tests.integration.conftest import Agents, finish, wait_for_line

pytestmark = pytest.mark.timeout(60)


def _get(host: str, path: str) -> int:
    conn = http.client.HTTPConnection(host, 29301, timeout=5)
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    finally:
        conn.close()


def _sidecar(agents: Agents, i: int, peers: int, *args: str) -> subprocess.Popen[str]:
    proc = agents.start("sidecar", i, peers, *args)
    wait_for_line(proc, f"pod {i} of {peers}")
    return proc


def test_readyz_turns_200_only_after_the_release(agents: Agents) -> None:
    for i in range(2):
        agents.publish(i)
    first = _sidecar(agents, 0, 2)
    assert _get(agents.address(0), "/livez") == 200
    assert _get(agents.address(0), "/readyz") == 503  # pod 1 not there: the main must not start
    second = _sidecar(agents, 1, 2)
    for proc in (first, second):
        wait_for_line(proc, "serving /readyz")
    assert _get(agents.address(0), "/readyz") == 200
    assert _get(agents.address(1), "/readyz") == 200
    assert _get(agents.address(1), "/nope") == 404
    for proc in (first, second):  # kubelet stops a native sidecar with SIGTERM: success
        proc.send_signal(signal.SIGTERM)
        assert finish(proc, timeout=5)[0] == 0


@pytest.mark.parametrize("restarted", [1, 0], ids=["member", "coordinator"])
def test_a_pod_restarted_after_the_release_is_released_at_once(
    agents: Agents, restarted: int
) -> None:
    for i in range(3):
        agents.publish(i)
    procs = [_sidecar(agents, i, 3) for i in range(3)]
    for proc in procs:
        wait_for_line(proc, "serving /readyz")
    procs[restarted].send_signal(signal.SIGKILL)
    procs[restarted].communicate()
    again = agents.start("sidecar", restarted, 3)
    lines = wait_for_line(again, "serving /readyz")
    assert any("already released" in line or "coordinator released" in line for line in lines)
    assert _get(agents.address(restarted), "/readyz") == 200


@pytest.mark.parametrize("probe", ["dns", "tcp:29301"])
def test_a_coordinator_restarted_after_the_release_passes_with_a_probe_that_says_no_hello(
    agents: Agents, probe: str
) -> None:
    """Its released members never arrive again, and this probe cannot carry their released
    flag: the restarted coordinator asks them with the agent's own hello (the look-around by
    name) and passes at once. Found by the in-memory cluster; before, it waited for ever."""
    for i in range(3):
        agents.publish(i)
    procs = [_sidecar(agents, i, 3, "--probe", probe) for i in range(3)]
    for proc in procs:
        wait_for_line(proc, "serving /readyz")
    procs[0].send_signal(signal.SIGKILL)
    procs[0].communicate()
    again = agents.start("sidecar", 0, 3, "--probe", probe)
    wait_for_line(again, "serving /readyz")
    assert _get(agents.address(0), "/readyz") == 200
