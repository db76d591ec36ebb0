"""pytest fixtures for tests that need the cluster in a box (import them in a conftest)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness.cluster import Cluster
from tests.harness.options import ClusterOptions

ClusterFactory = Callable[..., Cluster]


def require_root() -> None:
    """Network namespaces need root. CI runs as root, so this fails instead of skipping."""
    if os.geteuid() != 0:
        pytest.fail(
            "the cluster-in-a-box tests need root (network namespaces, mounts); "
            "run them as root, as CI does (sudo make test)",
            pytrace=False,
        )


@pytest.fixture
def make_cluster(tmp_path: Path) -> Iterator[ClusterFactory]:
    """make_cluster(publish_delay=..., ...) -> a started Cluster, always stopped at teardown."""
    require_root()
    clusters: list[Cluster] = []

    def make(**options: Any) -> Cluster:
        cluster = Cluster(tmp_path / f"cluster{len(clusters)}", ClusterOptions(**options))
        clusters.append(cluster)
        cluster.start()
        return cluster

    try:
        yield make
    finally:
        for cluster in clusters:
            cluster.stop()


@pytest.fixture
def cluster(make_cluster: ClusterFactory) -> Cluster:
    """A cluster with default options (no publication lag, no negative cache)."""
    return make_cluster()
