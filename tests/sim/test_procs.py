"""The in-memory cluster split over two OS processes (tests/sim/procs.py, part.py) against one
process: the same Job, the same verdicts and figures, and a merged record the checker reads."""

from __future__ import annotations

import pytest

from agent.core.effects import Released
from agent.core.graph import sparse_degree
from agent.core.groups import Tree
from tests.sim import digest, procs
from tests.sim.judge import unsafe
from tests.sim.part import owner_split
from tests.sim.truth import Truth, Verdict

pytestmark = pytest.mark.timeout(60)

N = 200


def test_the_parts_hold_whole_groups_and_the_root_the_fewer() -> None:
    for n in (7, 200, 1000, 100_000):
        bounds, size = owner_split(n, 2), Tree.of(n).size
        assert bounds[0] == 0 and bounds[-1] == n
        assert bounds[1] % size == 0  # no group across
        groups = -(-n // size)
        assert bounds[1] // size <= groups - bounds[1] // size  # the root's: the fewer groups


def test_two_processes_give_the_verdicts_and_figures_of_one() -> None:
    """Fault-free, sparse, no CPU model: every pod released in both, no finding on the merged
    record, and every DNS query, session and message the same. Not the same digest: the
    network's delays are drawn from one generator in the order events happen, which each
    part sees half of (docs/benchmarks.md, the sixth pass)."""
    one = digest.simulate(N)
    current = one.current().values()
    assert all(isinstance(node.verdict, Released) for node in current)
    assert unsafe(one) == []

    figures, merged = procs.simulate(N, degree=sparse_degree(N))
    assert procs.findings(N, figures, merged) == []
    assert sum(f.released for f in figures) == N
    queries = {i: q for f in figures for i, q in f.queries.items()}
    assert queries == {i: sum(m.queries for m in one.nodes if m.me.index == i) for i in range(N)}
    assert max(f.sessions_max for f in figures) == max(m.sessions for m in one.nodes)
    assert max(f.messages_max for f in figures) == max(m.messages for m in one.nodes)
    # the merged record holds what one process's does: every process, verdict and session
    truth = one.truth
    assert set(merged.processes) == set(truth.processes)
    assert set(merged.verdicts) == set(truth.verdicts)
    assert len(merged.sessions) == len(truth.sessions)
    assert len(merged.heard) == len(truth.heard)


def test_the_merged_record_is_in_the_order_of_simulated_time() -> None:
    a, b = Truth(), Truth()
    for t, when in ((a, 0.1), (b, 0.05), (a, 0.3), (b, 0.2)):
        t.seq += 1
        t.times.append(when)
    a.verdicts["x"] = Verdict(2, True, False, False)  # a's second step, at 0.3
    b.left["y"] = 1  # b's first, at 0.05
    merged = procs.merge_truths([a, b])
    assert merged.times == [0.05, 0.1, 0.2, 0.3]
    assert merged.verdicts["x"].seq == 4
    assert merged.left["y"] == 1


def test_the_checker_reads_both_parts_hellos_in_the_merged_record() -> None:
    """Without the hellos one part heard from across the cut, the same run is unsafe: the
    releases rest on edges proven in both parts' records, so the merge is what is judged."""
    figures, merged = procs.simulate(N, degree=sparse_degree(N))
    assert procs.findings(N, figures, merged) == []
    cut = owner_split(N, 2)[1]
    index = {instance: process.index for instance, process in merged.processes.items()}
    across = [pair for pair in merged.heard if index[pair[0]] >= cut > index[pair[1]]]
    assert across
    for pair in across:
        del merged.heard[pair]
    assert any("not proven" in finding for finding in procs.findings(N, figures, merged))
