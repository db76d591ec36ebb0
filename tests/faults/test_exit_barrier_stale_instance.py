"""The exit barrier when a peer was replaced after the start barrier and its old instance is
still up (review 11, item 4).

A Job's pod replacement (``podReplacementPolicy: TerminatingOrFailed``, the default) starts the
new pod while the old one is still terminating: two processes of one index, at two addresses,
DNS naming the new one. Pods 0 and 1 met pod 2's old instance in their start barrier (their
exit barrier is seeded with it), then the new instance at its new address (it passed its start
barrier against theirs, which still answer). The old instance's workload then ends (SIGTERM'd,
as in its grace period), and pods 0 and 1's workloads end. The new instance's workload still
runs: no pod may leave against the old instance, and every pod leaves once it ends.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults.conftest import AgentProcess, Job, agent_argv
from tests.support.faultdns import FaultDNS

pytestmark = pytest.mark.timeout(90)


def _run(job: Job, i: int, go: Path, *, listen: str | None = None) -> AgentProcess:
    script = f"until [ -e {go} ]; do sleep 0.05; done"
    argv = agent_argv(job, "run", i, "--exit-barrier", "--exit-timeout", "30s")
    if listen is not None:
        argv[argv.index("--listen") + 1] = listen
    return AgentProcess([*argv, "--", "sh", "-c", script])


def test_no_pod_leaves_against_a_replaced_instance_still_up(
    fault_dns: FaultDNS, processes: list[AgentProcess], tmp_path: Path
) -> None:
    job = Job(fault_dns, 3)
    job.publish()
    go = {name: tmp_path / f"go-{name}" for name in ("0", "1", "old", "new")}
    pods = [_run(job, 0, go["0"]), _run(job, 1, go["1"]), _run(job, 2, go["old"])]
    processes.extend(pods)
    for pod in pods:
        pod.wait_line("barrier released")
    moved = f"127.0.{job.net}.100"
    job.move(2, moved)
    new = _run(job, 2, go["new"], listen=moved)
    processes.append(new)
    new.wait_line("barrier released")
    go["old"].touch()
    pods[2].wait_line("waiting for every pod's workload to end")
    go["0"].touch()
    go["1"].touch()
    for pod in pods[:2]:
        pod.wait_line("waiting for every pod's workload to end")
    # pods 0 and 1 wait in their exit barrier while the new instance's workload runs: their first
    # progress line comes (5 s in), not a release against the old instance
    for pod in pods[:2]:
        pod.wait_line("exit barrier: waiting")
        assert "exit barrier: barrier released" not in pod.stderr, pod.stderr
    go["new"].touch()
    codes = [pod.finish(timeout=45) for pod in (pods[0], pods[1], new)]
    assert codes == [0, 0, 0], [pod.stderr for pod in (pods[0], pods[1], new)]
