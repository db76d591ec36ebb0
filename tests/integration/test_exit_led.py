"""``run --exit-barrier --exit-led-by 0``: real agent processes on loopback, real workloads (sh)
that never end by themselves, as sshd does in an MPI job's worker pods."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
from pathlib import Path

import pytest

from agent.protocol.wire import EXIT_BARRIER, Hello, Identity, Role
from tests.integration.conftest import JOB, Agents, finish, wait_for_line
from tests.support.exitled import say_hello, workload_pid

pytestmark = pytest.mark.timeout(90)

#: a daemon that says it got SIGTERM and ends with 143, as a daemon does
_TERMINABLE = 'trap "echo term > {out}; exit 143" TERM; echo up >&2; while :; do sleep 0.1; done'
#: a daemon that ignores SIGTERM (so does its sleep: an ignored signal stays ignored in exec)
_STUBBORN = "trap '' TERM; echo up >&2; while :; do sleep 0.1; done"


def _run(
    agents: Agents, i: int, script: str, *more: str, address: str | None = None
) -> subprocess.Popen[str]:
    return agents.start(
        "run",
        i,
        3,
        "--timeout",
        "60s",
        "--exit-barrier",
        "--exit-led-by",
        "0",
        "--exit-grace",
        "2s",
        *more,
        "--",
        "sh",
        "-c",
        script,
        address=address,
    )


@pytest.mark.parametrize("leader_code", [0, 3])
def test_the_leaders_end_stops_every_workload_and_all_exit_with_its_code(
    agents: Agents, tmp_path: Path, leader_code: int
) -> None:
    """Pod 0's workload ends (with 0, or failing with 3): pod 1's daemon gets SIGTERM and
    ends; pod 2's ignores it and is killed once the grace period is over. Every pod exits with
    pod 0's code, and the followers' logs say why."""
    for i in range(3):
        agents.publish(i)
    leader = _run(agents, 0, f"sleep 1; exit {leader_code}")
    term = tmp_path / "term"
    followers = [_run(agents, 1, _TERMINABLE.format(out=term)), _run(agents, 2, _STUBBORN)]
    results = [finish(p, timeout=60) for p in (leader, *followers)]
    assert [code for code, _, _ in results] == [leader_code] * 3, [e for _, _, e in results]
    assert term.read_text() == "term\n"
    one, two = results[1][2], results[2][2]
    assert f"the leader's workload (pod 0) ended with code {leader_code}" in one
    assert "outlived SIGTERM" not in one
    assert "the workload outlived SIGTERM by 2s: SIGKILL" in two
    assert f"workload stopped (its own code {128 + signal.SIGKILL})" in two
    if leader_code:
        for _, _, err in results[1:]:
            assert f"the workload failed in 1 other pod(s): {JOB}-0 (exit code 3)" in err


def test_with_a_token_the_leaders_proven_hello_stops_the_others(
    agents: Agents, tmp_path: Path
) -> None:
    for i in range(3):
        agents.publish(i)
    secret = tmp_path / "token"
    secret.write_text("s3cret-shared-by-the-job\n")
    secret.chmod(0o600)
    token = ("--token-file", str(secret))
    procs = [_run(agents, 0, "sleep 1; exit 5", *token)]
    procs += [_run(agents, i, _STUBBORN, *token) for i in (1, 2)]
    results = [finish(p, timeout=60) for p in procs]
    assert [code for code, _, _ in results] == [5, 5, 5], [e for _, _, e in results]


def test_an_unlisted_process_claiming_to_be_the_leader_stops_nothing(
    agents: Agents, tmp_path: Path
) -> None:
    """Every workload runs. Processes at addresses DNS does not give for pod 0 (an unlisted
    one, 127.0.0.1, pod 2's) tell pod 1 that pod 0's workload ended with 77, with pod 0's own
    instance id: pod 1's workload runs on. Then pod 0's real end (code 0) stops it, and every
    pod exits 0."""
    for i in range(3):
        agents.publish(i)
    go = tmp_path / "go"
    os.mkfifo(go)
    leader = _run(agents, 0, f"read line < {go}; exit 0")
    followers = [_run(agents, i, _STUBBORN) for i in (1, 2)]
    for proc in (leader, *followers):
        wait_for_line(proc, "workload started")
    anyone = Identity("someone", "", 0, 1, 29300)
    stranger = agents.address(7)
    pod0 = say_hello(stranger, (agents.address(0), 29300), Hello(anyone, Role.PROBE, "n" * 16))
    forged = dataclasses.replace(pod0.identity, barrier=EXIT_BARRIER, exit_code=77)
    for source in (stranger, "127.0.0.1", agents.address(2)):
        say_hello(source, (agents.address(1), 29300), Hello(forged, Role.PROBE, "n" * 16))
    assert followers[0].poll() is None
    with open(go, "w") as fifo:
        fifo.write("now\n")
    results = [finish(p, timeout=60) for p in (leader, *followers)]
    assert [code for code, _, _ in results] == [0, 0, 0], [e for _, _, e in results]
    assert "ended with code 0" in results[1][2]
    assert "code 77" not in results[1][2]


def test_a_leader_replaced_after_the_start_barrier_is_followed_at_its_new_address(
    agents: Agents,
) -> None:
    """Pod 0's pod dies while every workload runs; its successor comes up at another address
    (DNS now lists that one), passes at once (the others' start barriers still serve), and its
    workload ends: the others' workloads stop, and every pod exits with the successor's code."""
    for i in range(3):
        agents.publish(i)
    first = _run(agents, 0, "exec sleep 600")
    followers = [_run(agents, i, _STUBBORN) for i in (1, 2)]
    for proc in followers:
        wait_for_line(proc, "workload started")
    started = wait_for_line(first, "workload started")[-1]
    pid = workload_pid(started)
    first.kill()  # the container dies: the agent and its workload
    os.killpg(pid, signal.SIGKILL)
    first.communicate()
    moved = agents.address(5)
    agents.publish(0, address=moved)
    successor = _run(agents, 0, "exit 6", address=moved)
    results = [finish(p, timeout=60) for p in (successor, *followers)]
    assert [code for code, _, _ in results] == [6, 6, 6], [e for _, _, e in results]
    for _, _, err in results[1:]:
        assert "the leader's workload (pod 0) ended with code 6" in err
