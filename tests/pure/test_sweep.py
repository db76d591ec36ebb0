"""Bulk discovery rounds: one query a round, backoff while nothing changes, pushes at once."""

from __future__ import annotations

import math

import pytest

from agent.core.causes import Cause, Failure
from agent.core.sweep import Sweep

pytestmark = pytest.mark.timeout(10)

NXDOMAIN = Failure("NXDOMAIN", Cause.NXDOMAIN)
REFUSED = Failure("refused", Cause.CONNECT_REFUSED)


def _round(sweep: Sweep, addresses: list[str], now: float, *, reached: bool = True) -> list[str]:
    """A round whose answer lists ``addresses``, and the probes of those it claims landing."""
    assert sweep.query_due(now)
    claimed = sweep.answered(addresses, now)
    for address in claimed:
        sweep.probed(address, None if reached else REFUSED)
    return claimed


def test_one_query_at_a_time_fast_while_the_service_fails_then_about_one_a_second() -> None:
    sweep = Sweep(now=0.0, rand=lambda: 0.999)
    assert sweep.query_due(0.0)
    assert not sweep.query_due(0.0)  # in flight
    gaps, now = [], 0.0
    for _ in range(6):  # NXDOMAIN: no pod published yet
        sweep.failed(NXDOMAIN, now)
        wake = sweep.next_wakeup()
        assert wake is not None
        gaps.append(round(wake - now, 3))
        now = wake
        assert sweep.query_due(now)
    assert gaps == sorted(gaps) and gaps[0] < 0.25 and gaps[-1] <= 1.0
    assert sweep.answered(["10.0.0.2", "10.0.0.1"], now) == ["10.0.0.1", "10.0.0.2"]
    for address in ["10.0.0.1", "10.0.0.2"]:
        sweep.probed(address, REFUSED)
    # answered: the normal pace at once (arriving peers push), equal jitter within 0.5-1 s
    assert sweep.next_wakeup() == pytest.approx(now + 1.0 * (0.5 + 0.5 * 0.999))


def test_no_new_round_while_the_last_rounds_probes_are_out() -> None:
    sweep = Sweep(now=0.0, rand=lambda: 0.999)
    sweep.query_due(0.0)
    assert sweep.answered(["a", "b"], 0.0) == ["a", "b"]
    sweep.probed("a", None)
    assert sweep.next_wakeup() is None and not sweep.query_due(60.0)  # b's probe is out
    sweep.probed("b", Failure("connect to port 29500 timed out", Cause.CONNECT_TIMEOUT))
    assert sweep.query_due(60.0)


def test_a_changed_answer_does_not_speed_the_rounds_up() -> None:
    """Arriving peers say hello (push): polling faster while a job's pods arrive would only load
    cluster DNS when it is busiest."""
    sweep = Sweep(now=0.0, rand=lambda: 0.999)
    for t in range(5):
        _round(sweep, ["a"], float(t))
    _round(sweep, ["a", "b"], 10.0)
    # still capped at 1 s, equal jitter: between 0.5 and 1 s
    assert sweep.next_wakeup() == pytest.approx(10.0 + 1.0 * (0.5 + 0.5 * 0.999))


def test_identified_addresses_are_not_probed_again_but_a_push_may() -> None:
    sweep = Sweep(now=0.0, rand=lambda: 0.5)
    sweep.query_due(0.0)
    assert sweep.answered(["a", "b"], 0.0) == ["a", "b"]
    sweep.probed("a", None)
    sweep.probed("b", REFUSED)
    assert sweep.unidentified == {"b": REFUSED}
    assert _round(sweep, ["a", "b"], 5.0) == ["b"]
    assert not sweep.probe("a")
    assert sweep.probe("a", push=True)  # an unreached peer said hello from a reused address
    assert not sweep.probe("a", push=True)  # already in flight


def test_a_cut_short_answer_hands_the_rest_to_names_once_its_probes_land() -> None:
    sweep = Sweep(now=0.0, rand=lambda: 0.5)
    sweep.query_due(0.0)
    sweep.answered(["a", "b"], 0.0, truncated=True)
    sweep.probed("a", None)
    assert not sweep.ask_by_name()  # b still out: it may be the peer we lack
    sweep.probed("b", None)
    assert sweep.ask_by_name() and not sweep.ask_by_name()  # once per answer
    assert _round(sweep, ["a", "b"], 5.0) == [] and not sweep.ask_by_name()  # whole now


def test_failures_are_remembered_as_the_reason_and_rounds_stop_when_done() -> None:
    sweep = Sweep(now=0.0, rand=lambda: 0.5)
    sweep.query_due(0.0)
    sweep.failed(NXDOMAIN, 0.0)
    assert sweep.failure == NXDOMAIN and sweep.published == frozenset()
    sweep.stop()
    assert sweep.next_wakeup() is None and not sweep.query_due(100.0)


def test_a_push_from_an_address_dns_does_not_list_brings_the_next_round_forward() -> None:
    sweep = Sweep(now=0.0, rand=lambda: 0.999)
    for t in range(6):  # quiet: rounds about a second apart
        _round(sweep, ["a"], float(t))
    assert (sweep.next_wakeup() or 0) > 5.5
    assert not sweep.pushed("b", 5.02)  # not published (yet): not probed
    assert sweep.next_wakeup() == pytest.approx(5.1)  # but asked again soon
    sweep.query_due(5.1)
    assert sweep.answered(["a", "b"], 5.11) == ["b"]
    assert sweep.pushed("a", 5.2)  # a listed address: probed at once


def test_pods_arriving_one_after_another_do_not_each_cost_every_pod_a_round() -> None:
    """Each arriving pod says hello before DNS lists it to our last answer. The first such push
    brings the next round to 0.1 s; while they keep coming each brought-forward round waits
    twice as long as the one before (up to the normal pace); after a quiet while, 0.1 s again."""
    sweep = Sweep(now=0.0, rand=lambda: 0.999)
    _round(sweep, ["a"], 0.0)
    gaps, now, listed = [], 0.0, ["a"]
    for i in range(5):  # a new pod every 50 ms, each one's hello before our next round
        last = now
        now += 0.05
        assert not sweep.pushed(f"new{i}", now)
        now = sweep.next_wakeup() or math.inf
        gaps.append(round(now - last, 3))
        listed.append(f"new{i}")
        _round(sweep, listed, now)
    assert gaps == [0.1, 0.2, 0.4, 0.8, 1.0]
    now += 10.0  # quiet
    _round(sweep, listed, now)
    assert not sweep.pushed("late", now + 0.5)
    assert sweep.next_wakeup() == pytest.approx(now + 0.5)  # 0.1 s after our last round: at once
