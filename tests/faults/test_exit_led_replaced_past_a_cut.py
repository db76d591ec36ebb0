"""``--exit-led-by I`` past a cut answer: a pod replaced while the workloads run (review 12).

docs/modes.md: a pod that restarts after the barrier is met by the agents still up, and
pod I's end reaches every pod. Past a cut-short Service answer it is not: pods 0-3 of 4
(``run --exit-barrier --exit-led-by 0``, the cut answer listing pods 0 and 1 only) pass their
start barrier; pod 3 is replaced (killed, its name moved to a new address, a new agent there).
The new pod 3's start barrier never reached pod 2, whom the answer leaves out: "missing
example-job-2…: not reached, and its name not asked yet: the Service's answer was cut short at
2 addresses" for its whole ``--timeout`` (30 s here; 10 min by default), and it exited 3, not
pod 0's code, while pods 0-2 waited on in their exit barriers (~10 s past pod 0's end). With
the new address listed too (no pod left out), the new pod 3 passes at once and all four exit 7
within 2.2 s. Now pod 0 hands the new pod the addresses after its release too, and checks the
new pod's address by name at once (``agent.core.vouching``, ``Vouching.patience``).

Before: ``pytest tests/faults/test_exit_led_replaced_past_a_cut.py`` failed after ~20 s.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.conftest import NAMESPACE, SERVICE, ZONE, AgentProcess, Job, agent_argv
from tests.support.podsdns import CutServiceDNS

pytestmark = pytest.mark.timeout(90)

PEERS, LEADER, REPLACED = 4, 0, 3
_DAEMON = "trap 'exit 143' TERM; while :; do sleep 0.1; done"


def _run(
    job: Job, dns: CutServiceDNS, i: int, script: str, listen: str = "", timeout: str = "30s"
) -> AgentProcess:
    argv = agent_argv(job, "run", i, "--timeout", timeout, "--exit-barrier")
    argv += ["--exit-led-by", str(LEADER), "--exit-grace", "1s", "--exit-timeout", "20s"]
    argv[argv.index("--dns-server") + 1] = dns.server_for(i)
    if listen:
        argv[argv.index("--listen") + 1] = listen
    return AgentProcess([*argv, "--", "sh", "-c", script])


def _workloads(agent: AgentProcess) -> list[int]:
    """The agent's children: each CMD leads its own process group."""
    pid = agent.proc.pid
    with contextlib.suppress(OSError):
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    return []


@contextlib.contextmanager
def _cleaned(processes: list[AgentProcess]) -> Iterator[list[int]]:
    """Every workload ends with the test, whatever becomes of its agent (a killed agent leaves
    its CMD behind, as the node would not)."""
    groups: list[int] = []
    try:
        yield groups
    finally:
        for agent in processes:
            groups += _workloads(agent)
            agent.stop()
        for group in groups:
            with contextlib.suppress(OSError):
                os.killpg(group, signal.SIGKILL)


def test_a_pod_replaced_past_a_cut_answer_passes_its_start_barrier(
    processes: list[AgentProcess], tmp_path: Path
) -> None:
    with (
        CutServiceDNS(PEERS, f"{SERVICE}.{NAMESPACE}.svc.{ZONE}", ()) as dns,
        _cleaned(processes) as groups,
    ):
        job = Job(dns, PEERS)
        job.publish()
        dns.listed = (job.address(0), job.address(1))  # a Job too big for one answer
        flag = tmp_path / "go"
        leader = f"while [ ! -e {flag} ]; do sleep 0.1; done; exit 7"
        for i in range(PEERS):
            processes.append(_run(job, dns, i, leader if i == LEADER else _DAEMON))
        for agent in processes:
            agent.wait_line("workload started", timeout=30)
        old = processes[REPLACED]
        groups += _workloads(old)
        old.proc.kill()
        old.finish()
        moved = f"127.0.{job.net}.60"
        job.move(REPLACED, moved)
        # the others are up and released: the new pod is met at once (2.2 s, listed; ~1 s
        # here: pod 0 checks its new address by name). It waited 10 s (``vouch_wait``) for a
        # report of that address from pod 2, released and reporting no more, and before that
        # for ever: pod 0 handed out no addresses after its release.
        new = _run(job, dns, REPLACED, _DAEMON, moved, timeout="6s")
        processes.append(new)
        new.wait_line("workload started", timeout=20)
        flag.touch()
        codes = [p.finish(40) for p in (*processes[:REPLACED], new)]
        assert codes == [7] * PEERS, new.stderr
