"""``bench.cutanswer --mode sidecar`` (``bench.sidecarcut``) at a few pods: real sidecars against
the cut-answer DNS stub, readiness probed as kubelet probes it, a named barrier through
``peer-agent barrier`` in every pod, then SIGTERM. The 300-pod run is in docs/benchmarks.md
("Real agents at scale"); this keeps the bench's phases working."""

from __future__ import annotations

import pytest

from bench.sidecarcut import sidecar_cut

pytestmark = pytest.mark.timeout(120)


def test_four_sidecars_past_a_cut_answer_start_pass_a_named_barrier_and_stop() -> None:
    sample = sidecar_cut(peers=4, cut=2, timeout=60.0)
    assert sample["ok"], sample
    assert sample["ready"] == 4
    assert sample["named_exit_codes"] == {0: 4}
    assert sample["exit_codes"] == {0: 4}  # a sidecar stopped by SIGTERM exits 0
    assert sample["last_ready_after_last_launch_s"] is not None
    # each phase asked DNS, and only a few times a pod: its own name, the coordinator's, the
    # ring neighbour's and the Service's rounds
    assert 0 < sample["start_queries_per_pod"]["max"] <= 16, sample
    assert sample["named_queries_per_pod"]["max"] <= 16, sample
    assert sample["pods_sampled"] == 4
