"""``run --exit-barrier``: real agent processes on loopback, real workloads (sh) as children."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from tests.integration.conftest import Agents, finish, sigterm_until_gone, wait_for_line
from tests.support.exitled import workload_pid

pytestmark = pytest.mark.timeout(90)


def _run(agents: Agents, i: int, peers: int, script: str, *more: str) -> subprocess.Popen[str]:
    return agents.start(
        "run", i, peers, "--timeout", "60s", "--exit-barrier", *more, "--", "sh", "-c", script
    )


def test_nobody_leaves_before_the_last_workload_ends_and_codes_are_kept(
    agents: Agents, tmp_path: Path
) -> None:
    """Pod 2's workload ends 3 s after the others; pod 1's fails with 7. Every agent exits only
    once pod 2's workload has written its last line, each with its own workload's code, and the
    others' logs name pod 1's failure."""
    for i in range(3):
        agents.publish(i)
    scripts = [
        f"echo 0 > {tmp_path}/end-0",
        f"echo 1 > {tmp_path}/end-1; exit 7",
        f"sleep 3; echo 2 > {tmp_path}/end-2",
    ]
    procs = [_run(agents, i, 3, scripts[i]) for i in range(3)]
    results = []
    for proc in procs:
        results.append(finish(proc, timeout=60))
        # the moment this agent has left, the late workload has ended
        assert (tmp_path / "end-2").exists(), results[-1][2]
    assert [code for code, _, _ in results] == [0, 7, 0], [err for _, _, err in results]
    for i in (0, 2):
        assert (
            "the workload failed in 1 other pod(s): example-job-1 (exit code 7)" in (results[i][2])
        )
    assert "exit barrier: barrier released" in results[0][2]


def test_sigterm_to_the_agent_reaches_the_workloads_process_group(
    agents: Agents, tmp_path: Path
) -> None:
    """The leader and its child (same group) each trap SIGTERM; the agent exits with the
    leader's code."""
    agents.publish(0)
    child = f'(trap "echo child > {tmp_path}/child; exit 0" TERM; echo ready >&2; '
    child += "while :; do sleep 0.1; done) & "
    script = f'trap "wait; echo leader > {tmp_path}/leader; exit 42" TERM; {child} wait'
    proc = _run(agents, 0, 1, script)
    wait_for_line(proc, "ready")
    proc.send_signal(signal.SIGTERM)
    code, _, err = finish(proc)
    assert code == 42, err
    assert (tmp_path / "leader").read_text() == "leader\n"
    assert (tmp_path / "child").read_text() == "child\n"


def test_a_workload_killed_by_a_signal_exits_128_plus_n(agents: Agents) -> None:
    agents.publish(0)
    code, _, err = finish(_run(agents, 0, 1, "kill -USR1 $$"))
    assert code == 128 + signal.SIGUSR1, err


def test_a_missing_command_exits_127_after_leaving_together(agents: Agents) -> None:
    agents.publish(0)
    proc = agents.start("run", 0, 1, "--exit-barrier", "--", "no-such-command-xyz")
    code, _, err = finish(proc)
    assert code == 127
    assert "cannot run 'no-such-command-xyz'" in err


def test_without_the_flag_run_still_execs_same_pid(agents: Agents) -> None:
    agents.publish(0)
    proc = agents.start("run", 0, 1, "--", "sh", "-c", "echo $$")
    code, out, err = finish(proc)
    assert code == 0, err
    assert out.strip() == str(proc.pid)


def test_bad_exit_flags_are_usage_errors(agents: Agents) -> None:
    proc = agents.start(
        "run", 0, 1, "--exit-timeout", "soon", "--", "true", env={"PEER_AGENT_EXIT_BARRIER": "x"}
    )
    code, _, err = finish(proc)
    assert code == 2
    assert "--exit-timeout / PEER_AGENT_EXIT_TIMEOUT" in err
    assert "--exit-barrier / PEER_AGENT_EXIT_BARRIER" in err
    assert "Traceback" not in err


def test_a_pod_restarted_while_the_others_wait_to_leave_is_not_stranded(
    agents: Agents, tmp_path: Path
) -> None:
    """Pods 0 and 1 are in their exit barrier when pod 2 dies and comes back: its new start
    barrier is answered by their start barriers (still serving), it runs its workload, and then
    all three leave together."""
    for i in range(3):
        agents.publish(i)
    procs = [_run(agents, i, 3, "true") for i in range(2)]
    first = _run(agents, 2, 3, "exec sleep 600")
    started = wait_for_line(first, "workload started")[-1]
    pid = workload_pid(started)
    try:
        for proc in procs:
            wait_for_line(proc, "waiting for every pod's workload to end")
    finally:
        first.kill()  # the container dies: the agent and its workload
        os.killpg(pid, signal.SIGKILL)
    finish(first)
    again = _run(agents, 2, 3, f"echo again > {tmp_path}/again")
    code, _, err = finish(again, timeout=60)
    assert code == 0, err
    assert "barrier released" in err
    for proc in procs:
        code, _, err = finish(proc, timeout=60)
        assert code == 0, err
        assert "exit barrier: barrier released" in err
    assert (tmp_path / "again").exists()


def test_as_pid_1_it_reaps_orphans(agents: Agents, tmp_path: Path) -> None:
    """In a PID namespace of its own (as in a container) peer-agent is PID 1, the parent of
    every orphan: an orphan that ends must not stay a zombie. The workload waits until the
    orphan's /proc entry is gone, which only reaping does (a zombie stays listed)."""
    agents.publish(0)
    pidfile = tmp_path / "orphan"
    script = (
        f"(sh -c 'echo $$ > {pidfile}' &); "
        f"until [ -s {pidfile} ]; do sleep 0.05; done; pid=$(cat {pidfile}); "
        "n=0; while [ -e /proc/$pid ] && [ $n -lt 200 ]; do sleep 0.05; n=$((n+1)); done; "
        '[ ! -e /proc/$pid ] && echo "reaped $pid"'
    )
    argv = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"]
    proc = agents.start("run", 0, 1, "--exit-barrier", "--", "sh", "-c", script, wrap=argv)
    code, out, err = finish(proc)
    assert code == 0, out + err
    assert "reaped" in out


def test_an_exit_timeout_is_logged_and_the_workloads_code_kept(
    agents: Agents, tmp_path: Path
) -> None:
    for i in range(2):
        agents.publish(i)
    go = tmp_path / "go"
    first = _run(agents, 0, 2, "exit 5", "--exit-timeout", "1s")
    second = _run(agents, 1, 2, f"until [ -e {go} ]; do sleep 0.05; done", "--exit-timeout", "1s")
    try:
        code, _, err = finish(first)
    finally:
        go.touch()
    assert code == 5, err
    assert "exit barrier: timed out after 1s" in err
    assert "missing example-job-1" in err
    assert finish(second)[0] == 0


def test_an_exit_timeout_still_names_the_failures_it_knows(agents: Agents, tmp_path: Path) -> None:
    """Pod 1's workload fails with 7, pod 2's runs on past the exit timeout: pod 0 times out,
    and still says what it learnt of pod 1 (a timeout once hid it)."""
    for i in range(3):
        agents.publish(i)
    go = tmp_path / "go"
    wait = f"until [ -e {go} ]; do sleep 0.05; done"
    procs = [
        _run(agents, 0, 3, "true", "--exit-timeout", "3s"),
        _run(agents, 1, 3, "exit 7", "--exit-timeout", "3s"),
        _run(agents, 2, 3, wait, "--exit-timeout", "3s"),
    ]
    try:
        code, _, err = finish(procs[0])
    finally:
        go.touch()
    assert code == 0, err
    assert "exit barrier: timed out after 3s" in err
    assert "the workload failed in 1 other pod(s): example-job-1 (exit code 7)" in err
    for proc in procs[1:]:
        finish(proc)


# The agent's own entry point, then a SIGTERM at the last moment a Job controller's could come:
# after the CLI has returned the workload's code, while the process exits.
_SIGTERM_AS_IT_EXITS = (
    "import os, signal; from agent.__main__ import main; code = main(); "
    "os.kill(os.getpid(), signal.SIGTERM); os._exit(code)"
)


def test_a_sigterm_as_the_agent_exits_keeps_the_workloads_code(agents: Agents) -> None:
    """The storm below finds the last window only by luck (CI once did: the CLI gave SIGTERM its
    default back on the way out, and the pod died of it, 143 for the workload's 0); this hits
    that window every time."""
    agents.publish(0)
    proc = agents.start(
        "run", 0, 1, "--timeout", "30s", "--exit-barrier", "--", "sh", "-c", "exit 5",
        entry=("-c", _SIGTERM_AS_IT_EXITS),
    )  # fmt: skip
    code, _, err = finish(proc)
    assert code == 5, err


def test_sigterms_after_the_workload_ended_never_change_its_exit_code(
    agents: Agents, tmp_path: Path
) -> None:
    """A Job that one pod's failure fails has its other pods deleted: their agents get SIGTERM
    while they wait to leave, or while they exit. Once the workload has ended, its code is
    the agent's, however many SIGTERMs come and whenever (here: every millisecond until the
    agent is gone, through its exit barrier and its shutdown)."""
    agents.publish(0)
    agents.publish(1)
    go = tmp_path / "go"
    proc = _run(agents, 0, 2, "exit 0")
    # pod 0 waits for pod 1 to leave; pod 1 then waits in vain for pod 0 (it was stopped)
    other = _run(agents, 1, 2, f"until [ -e {go} ]; do sleep 0.05; done", "--exit-timeout", "1s")
    try:
        wait_for_line(proc, "waiting for every pod's workload to end")
        # The agent blocks these signals in its thread: any other thread (a worker thread of
        # anyio's that resolved an address) would take one while the default action is back.
        assert len(os.listdir(f"/proc/{proc.pid}/task")) == 1, "the agent started a thread"
        signals = sigterm_until_gone(proc)
    finally:
        go.touch()
    code, _, err = finish(proc)
    assert code == 0, (signals, err)
    assert finish(other)[0] == 0
