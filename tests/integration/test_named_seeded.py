"""A sidecar's named barrier passes on what its start barrier proved, past a cut answer.

At 100 sidecars past a cut Service answer every named barrier asked DNS for each of its
targets afresh, every pod at once (37 queries a pod, DNS timing out for all: docs/benchmarks.md,
"Real agents at scale"). Here, once every sidecar is ready, every pod's name answers SERVFAIL:
a named barrier seeded with the addresses its start barrier reached (``agent.core.seeded``)
still releases in every pod, asking DNS for nothing but the Service's rounds. Before the seed,
no named barrier released (each waited on its targets' names until its timeout).
"""

from __future__ import annotations

import pytest

from bench.sidecarcut import sidecar_cut

pytestmark = pytest.mark.timeout(150)

PEERS = 8


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param(("--reach", "sparse", "--reach-degree", "2"), id="sparse"),
        pytest.param((), id="all"),
    ],
)
def test_a_named_barrier_releases_when_dns_fails_after_the_start(extra: tuple[str, ...]) -> None:
    sample = sidecar_cut(peers=PEERS, cut=2, timeout=30.0, extra=extra, names_fail=True)
    assert sample["ready"] == PEERS, sample
    assert sample["named_exit_codes"] == {0: PEERS}, sample
    assert sample["exit_codes"] == {0: PEERS}, sample
    # no name asked: at most a few of the Service's rounds a pod (they ask one name each)
    assert sample["named_queries_per_pod"]["max"] <= 4, sample
