"""Open MPI behind peer-agent: k8s/examples/mpi-init as shipped, with a real sshd, one pod late.

The launcher (index 0) runs mpirun over the hostfile the agent wrote; the workers run this
machine's OpenSSH `sshd -D` (Debian's openssh-server), which mpirun's ssh reaches over the pod
network to start an orted. sshd never exits: the Job completes only because the launcher leads
the exit barrier (`--exit-led-by 0`), whose end stops every worker's sshd.
"""

from __future__ import annotations

import re

import pytest

from tests.harness import workload
from tests.harness.cluster import Cluster
from tests.harness.fixtures import ClusterFactory
from tests.harness.jobrun import JobRun
from tests.harness.pod import FAILED, SUCCEEDED
from tests.harness.realworkloads import MPI_EXAMPLE, collectives, mpi_image_files, with_ssh_key
from tests.harness.variants import with_args

CONTAINER = "mpi"


def _logs(cluster: Cluster, run: JobRun) -> str:
    return "\n".join(
        f"--- {p.name} {p.phase} {p.exit_codes}\n{cluster.logs(p, CONTAINER)}"
        for p in run.all_pods()
    )


def _shipped() -> workload.Workload:
    shipped = with_ssh_key(workload.load(MPI_EXAMPLE))
    [mpi] = shipped.jobs[0].template.containers
    assert mpi.name == CONTAINER
    before = mpi.args[: mpi.args.index("--")]
    assert before[:4] == ("run", "--exit-barrier", "--exit-led-by", "0"), before
    assert "sshd -D" in mpi.args[-1]
    return shipped


@pytest.mark.timeout(240)
def test_mpirun_over_real_sshd_and_the_job_completes(make_cluster: ClusterFactory) -> None:
    cluster = make_cluster(publish_delay=1.0, image_files=mpi_image_files())
    [run] = cluster.apply(_shipped(), start_delays={1: 3.0})
    status = cluster.wait_job(run, 180)
    logs = _logs(cluster, run)
    assert status == "Complete", logs
    assert all(run.pod(i).phase == SUCCEEDED for i in range(3)), logs
    done = collectives(cluster, run, CONTAINER)
    assert sorted(c.rank for c in done) == [0, 1, 2], logs
    assert all(c.world == 3 and c.total == 6 for c in done), done
    late_start = run.pod(1).started_at
    assert late_start is not None and all(c.at > late_start for c in done)
    launcher = run.pod(0).address
    for i in (1, 2):
        worker = cluster.logs(run.pod(i), CONTAINER)
        # sshd itself let the launcher in, over the pod network, with the Secret's key...
        assert re.search(rf"Accepted publickey for root from {re.escape(launcher)} ", worker)
        # ...and was stopped by the launcher's end, not by itself
        assert "the leader's workload (pod 0) ended with code 0" in worker, logs
    assert "barrier released" in cluster.logs(run.pod(0), CONTAINER), logs


@pytest.mark.timeout(240)
def test_a_failing_launcher_fails_every_pod_with_its_code(make_cluster: ClusterFactory) -> None:
    """The program fails on rank 0 after an all-reduce (sshd started every worker's orted):
    mpirun exits 3, and so does every pod, each worker's log naming the launcher's failure."""
    shipped = _shipped()
    [mpi] = shipped.jobs[0].template.containers
    failing = with_args(shipped, CONTAINER, (*mpi.args[:-1], mpi.args[-1].replace("hello", "fail")))
    cluster = make_cluster(publish_delay=1.0, image_files=mpi_image_files())
    [run] = cluster.apply(failing, start_delays={2: 3.0})
    status = cluster.wait_job(run, 180)
    # Failed once its first pod failed (backoffLimit 0): the others are leaving as it is marked
    ended = cluster.wait_for(lambda: all(run.pod(i).ended for i in range(3)), 60, "every pod")
    logs = _logs(cluster, run)
    assert status == "Failed" and ended, logs
    assert all(run.pod(i).phase == FAILED for i in range(3)), logs
    assert all(run.pod(i).exit_codes[CONTAINER] == 3 for i in range(3)), logs
    launcher = run.pod(0).address
    for i in (1, 2):
        worker = cluster.logs(run.pod(i), CONTAINER)
        assert re.search(rf"Accepted publickey for root from {re.escape(launcher)} ", worker)
        assert "the leader's workload (pod 0) ended with code 3" in worker, logs
        assert "the workload failed in 1 other pod(s): example-job-0 (exit code 3)" in worker
