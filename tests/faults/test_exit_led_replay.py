"""Outside review 10, claim 2 (docs/modes.md "An exit barrier led by one pod", docs/security.md
"The leader's end"): a hello of pod I's exit barrier stops a follower's workload only "from pod
I as this pod's start barrier reached it"; "a hello from anywhere else, whatever it claims,
stops nothing". Real agent processes (``run --exit-barrier --exit-led-by 0``) on loopback, a DNS
server the test controls, pod 0's pod lost and replaced at another address.

Pod addresses are reused, and a pod's instance id is anyone's to ask for (its probe answers
with it). Once pod 0's pod is gone and DNS no longer gives its old address for pod 0's name, a
process at that address that replays the lost instance's identity with an exit code is the
"replayed leader end from an address DNS does not tie to the leader's index".
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.protocol.wire import EXIT_BARRIER, Hello, Identity, Role
from tests.faults.conftest import AgentProcess, Job, agent_argv
from tests.support.exitled import say_hello, workload_pid
from tests.support.faultdns import FaultDNS

pytestmark = pytest.mark.timeout(90)

#: a daemon (sshd -D) that ends on SIGTERM
_DAEMON = "trap 'exit 143' TERM; echo up >&2; while :; do sleep 0.1; done"


@pytest.fixture
def workloads() -> Iterator[list[int]]:
    """Process groups of the workloads a test starts (an agent killed leaves its own): killed
    at the end."""
    groups: list[int] = []
    yield groups
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)


def _run(job: Job, i: int, script: str, address: str | None = None) -> AgentProcess:
    argv = agent_argv(job, "run", i, "--timeout", "60s", "--exit-barrier", "--exit-led-by", "0")
    argv += ["--exit-grace", "2s", "--", "sh", "-c", script]
    if address is not None:
        argv[argv.index("--listen") + 1] = address
    return AgentProcess(argv)


def _workload_pid(agent: AgentProcess) -> int:
    agent.wait_line("workload started")
    return workload_pid(next(text for _, text in agent.lines if "workload started" in text))


@pytest.mark.parametrize("when", ["successor running", "no pod 0 yet"])
def test_a_lost_leaders_end_replayed_from_its_old_address_stops_nothing(
    processes: list[AgentProcess], workloads: list[int], tmp_path: Path, when: str
) -> None:
    """Pods 0-2 run (pod 0's workload waits on a FIFO, the others are daemons). Pod 0's pod
    dies (agent and workload); DNS gives pod 0's name another address (``successor running``:
    its successor is up there, its workload running) or none (``no pod 0 yet``). A process at
    pod 0's old address, which DNS ties to no pod now, tells pod 1 that the lost instance's
    workload ended with 77. Then the successor's workload ends with 6: every pod should exit 6.

    Seen: pod 1 logs "the leader's workload (pod 0) ended with code 77: stopping this pod's
    workload", stops its daemon and exits 77 (both variants), with pod 0's successor still
    running. An MPI job's worker is killed by anyone who takes the lost launcher's address
    and asks it its instance id first."""
    with FaultDNS() as dns:
        job = Job(dns, 3)
        job.publish()
        first = _run(job, 0, "exec sleep 600")
        processes.append(first)
        processes.extend(_run(job, i, _DAEMON) for i in (1, 2))
        workloads.append(_workload_pid(first))
        workloads.extend(_workload_pid(follower) for follower in processes[1:])
        anyone = Identity("someone", "", 0, 1, job.port)
        lost = say_hello(
            job.address(7), (job.address(0), job.port), Hello(anyone, Role.PROBE, "n" * 16)
        )
        first.proc.kill()  # the pod dies: its agent and its workload
        os.killpg(workloads[0], signal.SIGKILL)
        first.finish()
        go = tmp_path / "go"
        os.mkfifo(go)
        moved = job.address(5)
        if when == "no pod 0 yet":
            dns.remove(job.fqdn(0))
            del job.published[0]
            dns.set(job.service, *(job.published[k] for k in sorted(job.published)))
        else:
            job.move(0, moved)
            processes.append(_run(job, 0, f"read line < {go}; exit 6", address=moved))
            workloads.append(_workload_pid(processes[-1]))
        replay = dataclasses.replace(lost.identity, barrier=EXIT_BARRIER, exit_code=77)
        say_hello(job.address(0), (job.address(1), job.port), Hello(replay, Role.PROBE, "n" * 16))
        if when == "no pod 0 yet":
            job.move(0, moved)
            processes.append(_run(job, 0, f"read line < {go}; exit 6", address=moved))
            workloads.append(_workload_pid(processes[-1]))
        with open(go, "w") as fifo:
            fifo.write("now\n")
        codes = [p.finish(timeout=60) for p in processes[1:]]
    assert "code 77" not in processes[1].stderr, processes[1].stderr
    assert codes == [6, 6, 6], [p.stderr for p in processes[1:]]
