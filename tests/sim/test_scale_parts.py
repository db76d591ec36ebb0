"""What ``make scale``'s in-memory rows stand on (tests/sim/scale.py): the CPU model (each core
call's CPU charged to its pod, whose events wait behind it as on one core) and the Service's
answer cut short past what one answer holds."""

from __future__ import annotations

import functools
import itertools
import pathlib
import random
import sys
from collections.abc import Callable
from typing import TypeVar

import pytest

from agent.core.effects import Released
from agent.core.inputs import Lost
from tests.sim import compiled, digest, scale
from tests.sim.cluster import Cluster
from tests.sim.dns import ANSWER_HOLDS, ServiceAnswers, View
from tests.sim.draws import Draws
from tests.sim.node import Pod

pytestmark = pytest.mark.timeout(60)

CALL = 0.005  # what the fake meter says each core call costs
T = TypeVar("T")


def _cluster(meter: bool) -> Cluster:
    ticks = itertools.count(step=int(CALL * 1e9))  # read before and after each call
    c = Cluster(8, mode="wait", seed=3, cpu_meter=(lambda: next(ticks)) if meter else None)
    for index in range(8):
        c.at(0.0, functools.partial(c.start, index))
    c.run_until(30.0)
    return c


def test_a_pod_handles_its_events_one_after_another_on_its_core() -> None:
    """With 5 ms a core call, every pod is still released and the checker finds nothing; the
    coordinator, which handles every member's arrival one after another, releases at least
    seven calls' CPU after the start; and each pod was charged exactly 5 ms a call."""
    free, charged = _cluster(meter=False), _cluster(meter=True)
    for c in (free, charged):
        assert all(isinstance(n.verdict, Released) for n in c.current().values()), c.describe()
        assert c.unsafe() == [], c.describe()
    root = charged.current()[0]
    assert root.verdict_at is not None and root.verdict_at >= 7 * CALL
    free_at = free.current()[0].verdict_at
    assert free_at is not None and free_at < root.verdict_at
    for pod in charged.pods:
        assert pod.cpu > 0 and round(pod.cpu / CALL, 6).is_integer()
        assert pod.busy_until >= pod.cpu  # its calls never overlapped


def test_events_queued_behind_the_core_are_all_handled_then_the_instance_is_polled_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As ``agent.io.runner._run``: what queued while the core was busy is handled in order,
    then one ``poll`` and one ``next_wakeup``, not one of each an event (the simulator's
    polls after each event were a third of its core calls)."""
    ticks = itertools.count(step=int(CALL * 1e9))
    c = Cluster(2, mode="wait", seed=3, cpu_meter=lambda: next(ticks))
    c.at(0.0, functools.partial(c.start, 0))
    c.run_until(0.0)
    node, calls = c.current()[0], list[str]()
    assert node.pod.busy_until > c.now  # its begin and first poll are being charged
    for name in ("handle", "poll", "next_wakeup"):
        call = getattr(node.agent, name)
        monkeypatch.setattr(node.agent, name, functools.partial(_logged, calls, name, call))
    for conn in (101, 102, 103):  # sessions it does not have: handled, nothing to do
        c.post(node, c.now, functools.partial(node.feed, Lost(conn, "reset")))
    c.run_until(node.pod.busy_until + 10 * CALL)
    polled = calls.index("poll")  # what else reached it meanwhile is handled before it too
    assert polled >= 3 and set(calls[:polled]) == {"handle"}, calls
    assert calls[polled + 1] == "next_wakeup", calls


def _logged(calls: list[str], name: str, call: Callable[..., T], *args: object) -> T:
    calls.append(name)
    return call(*args)


def test_a_service_larger_than_one_answer_answers_cut_short_and_never_lists_a_withdrawn_pod() -> (
    None
):
    pods = [Pod(i, f"10.0.{i // 250}.{i % 250}", 0.0) for i in range(ANSWER_HOLDS + 10)]
    answers, view = ServiceAnswers(), View()
    first = answers.answer(view, pods, 1.0)
    assert first.truncated and len(first.addresses) == ANSWER_HOLDS
    for _ in range(2 * ServiceAnswers.ROTATIONS):  # every rotation kept, then read again
        answers.answer(view, pods, 1.0)
    gone = pods[5]
    gone.withdrawn_at = 1.5
    answers.withdrawn()
    later = [answers.answer(view, pods, 2.0) for _ in range(ServiceAnswers.ROTATIONS)]
    assert all(gone.address not in a.addresses for a in later)
    assert any(gone.address in a.addresses for a in [first]) or ANSWER_HOLDS <= 5
    small = pods[:10]
    assert not answers.answer(view, small, 2.0).truncated


def _fresh(view: View, pods: list[Pod], start: int, now: float) -> tuple[tuple[str, ...], bool]:
    """What reading every pod from ``start`` afresh answers (no answer kept)."""
    order = pods[start:] + pods[:start]
    listed, truncated, _ = view.service(order, now)
    return tuple(p.address for p in listed), truncated


@pytest.mark.parametrize("size", [40, ANSWER_HOLDS + 40])
def test_a_kept_service_answer_is_what_reading_every_pod_afresh_would_answer(size: int) -> None:
    """Pods start one by one (the kept whole answer is extended by the new ones), are
    withdrawn, published late, and time passes: each answer equals a fresh read of the pods
    from the rotation's start, with the same cut."""
    rng = random.Random(size)
    pods: list[Pod] = []
    answers, views = ServiceAnswers(), [View(), View(lag=0.3, service_after=0.2)]
    now = 0.0
    for step in range(size + 200):
        now += rng.choice([0.0, 0.0, 0.01, 0.2])
        if len(pods) < size or rng.random() < 0.05:
            pods.append(Pod(len(pods), f"10.1.{len(pods) // 250}.{len(pods) % 250}", now))
        if pods and rng.random() < 0.1:
            gone = rng.choice(pods)
            gone.withdrawn_at = min(gone.withdrawn_at, now + rng.choice([0.0, 0.5]))
            answers.withdrawn(gone)
        view = rng.choice(views)
        got = answers.answer(view, pods, now)
        if step < size and step % (size // 40) != 0:
            continue  # while they start, a sample: a fresh read of 4,000 pods each step is slow
        n = len(pods)
        start = (
            answers._answers % ServiceAnswers.ROTATIONS * ANSWER_HOLDS if n > ANSWER_HOLDS else 0
        )
        addresses, truncated = _fresh(view, pods, start if start < n else 0, now)
        assert (got.addresses, got.truncated) == (addresses, truncated), step


def test_a_hundred_thousand_pods_started_at_one_instant_have_distinct_instance_ids() -> None:
    # The ground truth names a process by its id: two pods sharing one made the checker take
    # pod 47442's hellos for pod 63826's, 25 findings in the 100,000-pod row of a safe run.
    draws = Draws(1, clock_skew=0.0, workload=0.0)
    ids = [draws.instance(index, 0.0, 0.0, outsider=False) for index in range(100_000)]
    assert len(set(ids)) == len(ids)
    assert [int(i[-3:], 16) & 0x3FF for i in ids[:1024]] == list(range(1024))  # index in trace


def test_a_row_with_findings_prints_them_and_fails(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A row printed only a count of findings, and the 100,000-pod one took half an hour to rerun
    # to read them.
    monkeypatch.setattr(scale, "unsafe", lambda cluster: ["3:x released at 1.0 early"])
    assert scale.main(["--sizes", "20", "--faults", "", "--all", ""]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == "    finding: 3:x released at 1.0 early"
    assert out[-2].split()[:6] == ["20", "sparse", "10", "-", "yes", "1"]


@pytest.mark.slow  # 3 s of the quick tier: make test runs it
def test_the_record_reads_a_coordinators_sessions_as_the_whole_list_holds_them() -> None:
    """The checker reads a coordinator's sessions by server (``Truth.by_server``), not among
    all of them: the same sessions, in the same order, for every server."""
    c = digest.simulate(300, faults=True)  # a scale row's run: a sparse Job, a tree of groups
    truth = c.truth
    assert len(truth.by_server) > 1  # the root and the group coordinators
    for server, sessions in truth.by_server.items():
        assert sessions == [s for s in truth.sessions if s.server == server]
    assert sum(map(len, truth.by_server.values())) == len(truth.sessions)


def test_without_a_compiled_build_the_rows_run_the_interpreted_core_and_say_so(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``python -m tests.sim.compiled DIR MODULE`` with nothing built in DIR runs MODULE on the
    checkout's interpreted core, says so, and charges its CPU as measured (a factor of 1)."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    monkeypatch.delitem(sys.modules, "tests.sim.digest")  # run afresh as __main__, as -m does
    with pytest.raises(SystemExit) as exited:
        compiled.main([str(tmp_path), "tests.sim.digest", "--sizes", "20", "--faults", ""])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"the cores: interpreted (no compiled agent/core in {tmp_path})")
    assert "     20      - " in out
    assert not compiled.compiled_core()
    assert scale.cpu_factor() == 1.0


def test_a_tallied_run_makes_the_same_calls_as_one_without_and_tallies_each_pods_cpu() -> None:
    # the compiled core's factor compares two tallied runs call for call (digest --cpu)
    plain, tallied = digest.simulate(40), digest.simulate(40, tally=True)
    assert digest.digest(tallied) == digest.digest(plain)
    assert all(p.cpu > 0 for p in tallied.pods) and all(p.cpu == 0 for p in plain.pods)
