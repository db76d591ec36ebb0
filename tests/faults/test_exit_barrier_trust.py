"""``run --exit-barrier`` against what others can say or read: a pod restarted after its workload
was OOM-killed, a forged failure report, the token in the agent's own environment (issue 21,
holes 4, 10 and 11). Real agents and real workloads on loopback.
"""

from __future__ import annotations

import secrets
import socket
from pathlib import Path

import pytest

from agent.commands.leave import exit_identity
from agent.io.runner import identity_of
from agent.protocol.wire import Hello, Role, encode
from tests.faults.conftest import AgentProcess, Job, agent_argv
from tests.support.faultdns import FaultDNS

pytestmark = pytest.mark.timeout(90)


def _run(
    job: Job, i: int, script: str, *more: str, env: dict[str, str] | None = None
) -> AgentProcess:
    argv = agent_argv(job, "run", i, "--exit-barrier", *more, "--", "sh", "-c", script)
    return AgentProcess(argv, env=env)


def test_a_pod_restarted_after_an_oom_kill_is_newer_than_its_dead_instance(
    fault_dns: FaultDNS, processes: list[AgentProcess], tmp_path: Path
) -> None:
    """Pod 1's workload exits 137 (an OOM kill); pod 1's agent dies in its exit barrier, and the
    pod comes back with a workload that exits 0. The others must take the new instance for the
    newer one (its exit code once made its id shorter, so it sorted as older and every pod
    waited out --exit-timeout); all leave together, and nobody reports the dead instance's 137."""
    job = Job(fault_dns, 3)
    job.publish()
    go = tmp_path / "go"
    first = [
        _run(job, 0, "true", "--exit-timeout", "40s"),
        _run(job, 1, "exit 137", "--exit-timeout", "40s"),
        _run(job, 2, f"until [ -e {go} ]; do sleep 0.05; done", "--exit-timeout", "40s"),
    ]
    processes.extend(first)
    for i in (0, 1):  # pods 0 and 1 have met in their exit barriers: each knows the other's id
        first[i].wait_line(f"exit barrier: reached {job.fqdn(1 - i)}")
    first[1].proc.kill()
    first[1].finish()
    again = _run(job, 1, "true", "--exit-timeout", "40s")
    processes.append(again)
    again.wait_line("waiting for every pod's workload to end")
    go.touch()
    pods = [first[0], again, first[2]]
    codes = [pod.finish(timeout=60) for pod in pods]
    assert codes == [0, 0, 0], [pod.stderr for pod in pods]
    for pod in pods:
        assert "exit barrier: barrier released" in pod.stderr, pod.stderr
        assert "exit code 137" not in pod.stderr, pod.stderr


def _forge(job: Job, index: int, code: int, source: str) -> None:
    """From ``source`` (an address DNS does not list), say the exit barrier's hello of pod
    ``index`` with workload exit code ``code`` to pod 0, as a probe; never prove a token."""
    forged = exit_identity(identity_of(job.config(index)), code)
    for _ in range(3):
        with socket.create_connection((job.address(0), job.port), source_address=(source, 0)) as s:
            s.sendall(encode(Hello(forged, Role.PROBE, "ab" * 16)))
            s.settimeout(5)
            s.recv(4096)  # the reply: the hello was read


@pytest.mark.parametrize("token", [None, "s3cret-token"], ids=["no-token", "token"])
def test_a_forged_hello_neither_invents_nor_hides_a_failure(
    fault_dns: FaultDNS, processes: list[AgentProcess], tmp_path: Path, token: str | None
) -> None:
    """Pod 1's workload fails with 7; pod 2's runs on. A process at an address DNS does not
    list, without the token, then says pod 1's exit-barrier hello with exit code 137. When pod 2's
    workload ends, every pod leaves, and pods 0 and 2 report pod 1's real code, 7: the failure
    report counts only peers admitted (token proven, address listed), not any hello."""
    job = Job(fault_dns, 3)
    job.publish()
    go = tmp_path / "go"
    env = {"PEER_AGENT_TOKEN": token} if token else None
    pods = [
        _run(job, 0, "true", env=env),
        _run(job, 1, "exit 7", env=env),
        _run(job, 2, f"until [ -e {go} ]; do sleep 0.05; done", env=env),
    ]
    processes.extend(pods)
    for i in (0, 1):
        pods[i].wait_line(f"exit barrier: reached {job.fqdn(1 - i)}")
    _forge(job, 1, 137, f"127.0.{job.net}.99")
    go.touch()
    assert [pod.finish() for pod in pods] == [0, 7, 0], [pod.stderr for pod in pods]
    for i in (0, 2):
        line = "the workload failed in 1 other pod(s): example-job-1 (exit code 7)"
        assert line in pods[i].stderr, pods[i].stderr
        assert "exit code 137" not in pods[i].stderr, pods[i].stderr


def test_the_token_is_not_in_the_agents_own_environment_while_it_is_the_parent(
    fault_dns: FaultDNS, processes: list[AgentProcess]
) -> None:
    """With `run --exit-barrier` the agent stays the workload's parent: the workload reads the
    agent's environment from /proc/$PPID/environ, and the token is not there (nor in its own);
    the barrier still passes with it."""
    token = secrets.token_urlsafe(24)
    job = Job(fault_dns, 1)
    job.publish()
    script = 'tr "\\0" "\\n" < /proc/$PPID/environ; echo ---; env'
    agent = _run(job, 0, script, env={"PEER_AGENT_TOKEN": token})
    processes.append(agent)
    assert agent.finish() == 0, agent.stderr
    parent, _, own = agent.stdout.partition("---")
    assert "PEER_AGENT_INDEX" not in parent and "PATH=" in parent  # the agent's, not the child's
    assert "PEER_AGENT_INDEX=0" in own
    assert token not in agent.stdout, parent
    assert "exit barrier: barrier released" in agent.stderr
