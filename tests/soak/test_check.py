"""The soak's judge on hand-made records: it must see each violation it counts (no cluster)."""

from __future__ import annotations

import datetime
import json
from dataclasses import replace

from tests.soak.barrier import BarrierRun, Instance
from tests.soak.check import judge
from tests.soak.plan import make_plan

T0 = 1_800_000_000.0
ADDR = {0: "198.18.1.1", 1: "198.18.1.2", 2: "198.18.1.3"}


def line(t: float, event: str, **fields: object) -> str:
    ts = datetime.datetime.fromtimestamp(T0 + t, datetime.UTC).isoformat(timespec="milliseconds")
    return json.dumps({"ts": ts, "event": event, "msg": event, **fields})


def agent_log(
    reached: dict[int, tuple[float, str]], reached_all: float | None, released: float
) -> str:
    lines = [line(0.0, "start")]
    lines += [line(t, "reached", peer=p, address=a) for p, (t, a) in sorted(reached.items())]
    if reached_all is not None:
        lines.append(line(reached_all, "reached-all"))
    lines.append(line(released, "released"))
    return "\n".join(lines) + "\n"


def pod(index: int, log: str, **kw: object) -> Instance:
    fields: dict[str, object] = {
        "index": index,
        "name": f"job-{index}-x",
        "address": ADDR[index],
        "started": T0 - 1,
        "ended": T0 + 5,
        "phase": "Succeeded",
        "exit_code": 0,
        "killed": None,
        "log": log,
    }
    fields.update(kw)
    return Instance(**fields)  # type: ignore[arg-type]


def clean_run() -> BarrierRun:
    plan = replace(make_plan(0, 1), peers=3)
    reached = {p: (0.1 + p / 10, ADDR[p]) for p in range(3)}
    pods = [pod(i, agent_log(reached, 0.5, 1.0)) for i in range(3)]
    return BarrierRun(plan=plan, status="Complete", elapsed=2.0, instances=pods)


def test_a_clean_barrier_passes() -> None:
    verdict = judge(clean_run())
    assert verdict.ok, verdict
    assert verdict.release_latency == 1.0


def test_a_release_before_someone_reached_all_is_early() -> None:
    run = clean_run()
    reached = {p: (0.1, ADDR[p]) for p in range(3)}
    run.instances[1] = pod(1, agent_log(reached, 0.2, 0.3))  # left at 0.3; others reach at 0.5
    verdict = judge(run)
    assert len(verdict.early) == 1 and "job-1-x" in verdict.early[0]
    assert not verdict.wrong and not verdict.hang


def test_a_release_while_an_agent_never_reached_all_is_early() -> None:
    run = clean_run()
    run.instances[2] = pod(2, agent_log({}, None, 1.0))
    assert len(judge(run).early) == 3


def test_counting_a_pod_killed_before_the_release_is_wrong() -> None:
    run = clean_run()
    old = pod(2, run.instances[2].log, name="job-2-old", killed=T0 + 0.6, phase="Failed")
    new = pod(2, run.instances[2].log, name="job-2-new", address="198.18.1.9")
    run.instances[2:] = [old, new]
    verdict = judge(run)  # everyone counted 198.18.1.3, the old pod's address
    assert len(verdict.wrong) == 3 and verdict.stale_counts == 3
    assert "job-2-new at 198.18.1.9" in verdict.wrong[0]


def test_counting_an_address_no_pod_of_that_index_had_is_wrong() -> None:
    run = clean_run()
    reached = {p: (0.1, ADDR[p]) for p in range(3)} | {1: (0.1, ADDR[2])}
    run.instances[0] = pod(0, agent_log(reached, 0.5, 1.0))
    verdict = judge(run)
    assert len(verdict.wrong) == 1 and "no pod 1 had that address" in verdict.wrong[0]


def test_an_unfinished_job_or_a_failed_agent_is_a_hang() -> None:
    run = clean_run()
    assert judge(replace(run, status="Running")).hang
    run.instances[0] = pod(0, run.instances[0].log, exit_code=3, phase="Failed")
    assert judge(run).hang


def test_plans_are_reproducible_and_within_bounds() -> None:
    for number in range(50):
        plan = make_plan(number, 7)
        assert plan == make_plan(number, 7)
        assert 8 <= plan.peers <= 16 and all(0 <= s <= 3 for s in plan.skews)
        for restart in plan.restarts:
            assert plan.holdout is not None and restart.index != plan.holdout
            assert plan.skews[restart.index] < plan.skews[plan.holdout] - 1.0
