"""The seed example with the built image as the pods' container: podman in the pods' namespaces.

The image is built offline as tests/e2e/test_image.py builds it (debootstrap'ed Debian base,
cached); each pod's container is `podman run` of it with the pod's network namespace,
hostname, /etc/hosts and resolv.conf, as the manifest's non-root user, every capability dropped
and a read-only root filesystem, enforced by the runtime (tests/harness/podman.py).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from tests import podman_kit
from tests.e2e.test_agent import assert_all_succeeded, seed_example
from tests.harness.fixtures import ClusterFactory
from tests.harness.podman import PodmanRuntime
from tests.harness.variants import with_args

TAG = "localhost/peer-agent:e2e-pods"
# The seed's own line, then what the container sees of itself.
EVIDENCE = (
    'echo "pod $RANK of $WORLD_SIZE reached all of $PEER_HOSTS; leader is $MASTER_ADDR"; '
    'echo "uid=$(id -u)"; grep CapEff /proc/self/status; '
    "touch /written 2>/dev/null || echo 'root filesystem: read-only'; "
    "test -e /opt/peer-agent/peer-agent.pyz && test ! -e /work && echo 'image: own root'"
)


@pytest.fixture(scope="module")
def runtime() -> Iterator[PodmanRuntime]:
    for tool in ("podman", "debootstrap", "runc"):
        assert shutil.which(tool), f"{tool} is not installed; `make deps` installs it"
    p = podman_kit.podman()
    podman_kit.build_image(p, podman_kit.base_image(p), TAG)
    env = tuple((k, v) for k, v in p.env.items() if k.startswith("CONTAINERS_"))
    yield PodmanRuntime(env=env, images=(("peer-agent", TAG),))
    p.run("rmi", "--force", TAG, check=False)


@pytest.mark.timeout(1200)
def test_seed_example_in_the_image_under_podman(
    runtime: PodmanRuntime, make_cluster: ClusterFactory
) -> None:
    cluster = make_cluster(publish_delay=1.0, podman=runtime)
    workload = with_args(seed_example(), "peer-agent", ("run", "--", "sh", "-c", EVIDENCE))
    [run] = cluster.apply(workload, start_delays={2: 3.0})
    assert_all_succeeded(cluster, run, 120)
    for i in range(3):
        log = cluster.logs(run.pod(i))
        assert f"pod {i} of 3 reached all of" in log, log
        assert "uid=65532" in log, log
        assert "CapEff:\t0000000000000000" in log, log
        assert "root filesystem: read-only" in log, log
        assert "image: own root" in log, log
