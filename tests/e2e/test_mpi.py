"""Open MPI behind peer-agent: k8s/examples/mpi-init as shipped, one pod late.

The init container holds the barrier and writes the hostfile; the launcher pod's mpirun starts
an orted in every worker pod through an ssh stand-in (the MPI image's plm_rsh_agent) talking to
the workers' "sshd", which is their main container: up only once their init container ended.
Every rank's mpi4py all-reduce line reaches the launcher's log through its orted.
"""

from __future__ import annotations

import pytest

from tests.harness import workload
from tests.harness.fixtures import ClusterFactory
from tests.harness.pod import SUCCEEDED
from tests.harness.realworkloads import MPI_EXAMPLE, collectives, mpi_image_files


@pytest.mark.timeout(240)
def test_mpirun_across_the_pods_after_the_barrier(make_cluster: ClusterFactory) -> None:
    cluster = make_cluster(publish_delay=1.0, image_files=mpi_image_files())
    [run] = cluster.apply(workload.load(MPI_EXAMPLE), start_delays={1: 3.0})
    status = cluster.wait_job(run, 180)
    logs = "\n".join(
        f"--- {p.name} {p.phase} {c}\n{cluster.logs(p, c)}"
        for p in run.all_pods()
        for c in ("peer-agent", "workload")
    )
    assert status == "Complete", logs
    assert all(run.pod(i).phase == SUCCEEDED for i in range(3)), logs
    done = collectives(cluster, run, "workload")
    assert sorted(c.rank for c in done) == [0, 1, 2], logs
    assert all(c.world == 3 and c.total == 6 for c in done), done
    late_start = run.pod(1).started_at
    assert late_start is not None and all(c.at > late_start for c in done)
    launcher = run.pod(0).address
    for i in (1, 2):
        # The orted ran in the worker pod, started over the pod network by the launcher.
        assert f"running a command for ::ffff:{launcher}" in cluster.logs(run.pod(i), "workload")
    assert "barrier released" in cluster.logs(run.pod(0), "peer-agent"), logs
