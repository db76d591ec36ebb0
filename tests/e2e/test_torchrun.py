"""torchrun behind peer-agent: three pods, one late, a gloo all-reduce checked on every rank.

torch is Debian's python3-torch (1.13, CPU) under /usr/bin/python3, which is what `python3`
and `torchrun` are on the pods' PATH.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from tests.harness import workload
from tests.harness.cluster import Cluster
from tests.harness.fixtures import ClusterFactory
from tests.harness.jobrun import JobRun
from tests.harness.pod import SUCCEEDED
from tests.harness.realworkloads import (
    TORCHRUN_EXAMPLE,
    collectives,
    torch_image_files,
    torchrun_behind_agent,
)


def assert_allreduce_everywhere(cluster: Cluster, run: JobRun, late: int) -> None:
    try:
        status = cluster.wait_job(run, 200)
    except TimeoutError:
        status = "not finished"  # the assertion below shows every pod's log
    logs = "\n".join(f"--- {p.name} {p.phase}\n{cluster.logs(p)}" for p in run.all_pods())
    assert status == "Complete", logs
    assert all(run.pod(i).phase == SUCCEEDED for i in range(3)), logs
    done = collectives(cluster, run)
    assert sorted(c.rank for c in done) == [0, 1, 2], logs
    assert all(c.world == 3 and c.total == 6 for c in done), done
    started = run.pod(late).started_at
    assert started is not None and all(c.at > started for c in done)


@pytest.mark.timeout(300)
def test_torchrun_behind_peer_agent_master_late(make_cluster: ClusterFactory) -> None:
    """The master (pod 0) is scheduled 3 s late: nobody can resolve MASTER_ADDR until then."""
    cluster = make_cluster(publish_delay=1.0, image_files=torch_image_files())
    [run] = cluster.apply(torchrun_behind_agent(), start_delays={0: 3.0})
    assert_allreduce_everywhere(cluster, run, late=0)
    assert "barrier released" in cluster.logs(run.pod(1))


def _shipped_trainer() -> dict[str, Any]:
    """The training container as k8s/examples/torchrun/kustomization.yaml has it."""
    kustomization = yaml.safe_load((TORCHRUN_EXAMPLE / "kustomization.yaml").read_text())
    for patch in kustomization["patches"]:
        doc = yaml.safe_load(patch["patch"])
        if isinstance(doc, dict) and doc.get("kind") == "Job":
            [trainer] = doc["spec"]["template"]["spec"]["containers"]
            return dict(trainer)
    raise AssertionError("no Job patch in the torchrun example")


@pytest.mark.timeout(300)
def test_torchrun_example_as_shipped(make_cluster: ClusterFactory) -> None:
    """k8s/examples/torchrun unchanged: the zipapp copied by an init container, pod 2 late; the
    trainer container asks for a GPU (the box has none and ignores it) and leaves through the
    exit barrier, as the README recommends for torchrun (its store lives on rank 0)."""
    shipped = workload.load(TORCHRUN_EXAMPLE)
    [trainer] = shipped.jobs[0].template.containers
    in_file = _shipped_trainer()
    assert trainer.name == in_file["name"] == "trainer"
    assert list(trainer.args) == [str(a) for a in in_file["args"]]
    assert trainer.args[: trainer.args.index("--")] == ("run", "--exit-barrier")
    assert in_file["resources"]["limits"]["nvidia.com/gpu"] == 1
    # Its docs promise flags that torch 1.13 (which runs it here) and newer torch both accept.
    script = trainer.args[-1]
    assert not re.findall(r"--[a-z]+-[a-z-]+", script), script
    docs = re.sub(r"\s*\n#\s*", " ", (TORCHRUN_EXAMPLE / "kustomization.yaml").read_text())
    assert "the hyphen spellings need torch >= 2.0" in docs
    cluster = make_cluster(publish_delay=1.0, image_files=torch_image_files())
    [run] = cluster.apply(shipped, start_delays={2: 3.0})
    assert_allreduce_everywhere(cluster, run, late=2)
    assert [run.pod(i).exit_codes["copy-peer-agent"] for i in range(3)] == [0, 0, 0]
    for i in range(3):  # every pod waited for every torchrun to end before it left
        log = cluster.logs(run.pod(i))
        assert "workload exited with code 0; waiting for every pod's workload" in log, log
        assert "exit barrier: barrier released" in log, log
