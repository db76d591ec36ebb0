"""A 64-pod Indexed Job end to end: the shipped seed example, scaled."""

from __future__ import annotations

import time

import pytest

from tests.e2e.test_agent import assert_all_succeeded, assert_barrier_held, seed_example
from tests.harness.fixtures import ClusterFactory
from tests.harness.variants import with_completions


# Some 13 s on an idle 2-core machine (64 Python agents starting); generous bounds because CI
# machines are shared.
@pytest.mark.timeout(300)
def test_64_pods_pass_the_barrier(make_cluster: ClusterFactory) -> None:
    cluster = make_cluster(publish_delay=0.5)
    wl = with_completions(seed_example(timeout="240s"), 64)
    started = time.monotonic()
    [run] = cluster.apply(wl)
    created = time.monotonic() - started
    assert_all_succeeded(cluster, run, 250)
    done = time.monotonic() - started
    assert_barrier_held(run)
    print(
        f"64 pods: created in {created:.2f}s, all Succeeded after {done:.2f}s, "
        f"{cluster.dns_queries()} DNS queries"
    )
