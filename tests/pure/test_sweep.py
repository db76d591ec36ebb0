"""Bulk discovery (agent.core.discovery.ByService): one query a round, backoff while nothing
changes, pushes at once; its rounds (agent.core.rounds), its book of addresses
(agent.core.probebook) and a cut-short answer's hand-over to names (agent.core.cutanswer)."""

from __future__ import annotations

import math

import pytest

from agent.core.causes import Cause, Failure
from agent.core.discovery import ByService
from agent.core.effects import ProbeAddress, Report, Sweep
from agent.core.inputs import Resolution
from agent.core.log import LogKind
from agent.core.reach import Reach
from agent.core.timing import DEFAULT_TIMING

pytestmark = pytest.mark.timeout(10)

NXDOMAIN = Failure("NXDOMAIN", Cause.NXDOMAIN)
REFUSED = Failure("refused", Cause.CONNECT_REFUSED)


def _service(rand: float = 0.5, peers: int = 3) -> ByService:
    """Pod 0 of ``peers``, asking for itself by name and for the others by the Service."""
    reach = Reach(peers, now=0.0, rand=lambda: rand, scheduled={0})
    return ByService(reach, now=0.0, rand=lambda: rand, timing=DEFAULT_TIMING)


def _answer(
    service: ByService, addresses: list[str], now: float, *, truncated: bool = False
) -> list[str]:
    """The round's answer listing ``addresses``: the addresses it claims for probes."""
    probes = service.answered(Resolution(tuple(addresses), truncated=truncated), now)
    assert all(isinstance(p, ProbeAddress) for p in probes)
    return [p.address for p in probes if isinstance(p, ProbeAddress)]


def _due(service: ByService, now: float) -> bool:
    return service.take_due(now) == [Sweep()]


def _round(
    service: ByService, addresses: list[str], now: float, *, reached: bool = True
) -> list[str]:
    """A round whose answer lists ``addresses``, and the probes of those it claims landing."""
    assert _due(service, now)
    claimed = _answer(service, addresses, now)
    for address in claimed:
        service.probed(address, None if reached else REFUSED)
    return claimed


def test_one_query_at_a_time_fast_while_the_service_fails_then_about_one_a_second() -> None:
    service = _service(rand=0.999)
    assert _due(service, 0.0)
    assert not _due(service, 0.0)  # in flight
    gaps, now = [], 0.0
    for _ in range(6):  # NXDOMAIN: no pod published yet
        service.answered(Resolution(failure=NXDOMAIN), now)
        wake = service.next_wakeup()
        assert wake is not None
        gaps.append(round(wake - now, 3))
        now = wake
        assert _due(service, now)
    assert gaps == sorted(gaps) and gaps[0] < 0.25 and gaps[-1] <= 1.0
    assert _answer(service, ["10.0.0.2", "10.0.0.1"], now) == ["10.0.0.1", "10.0.0.2"]
    for address in ["10.0.0.1", "10.0.0.2"]:
        service.probed(address, REFUSED)
    # answered: the normal pace at once (arriving peers push), equal jitter within 0.5-1 s
    assert service.next_wakeup() == pytest.approx(now + 1.0 * (0.5 + 0.5 * 0.999))


def test_no_new_round_while_the_last_rounds_probes_are_out() -> None:
    service = _service(rand=0.999)
    _due(service, 0.0)
    assert _answer(service, ["a", "b"], 0.0) == ["a", "b"]
    service.probed("a", None)
    assert service.next_wakeup() is None and not _due(service, 60.0)  # b's probe is out
    service.probed("b", Failure("connect to port 29500 timed out", Cause.CONNECT_TIMEOUT))
    assert _due(service, 60.0)


def test_a_changed_answer_does_not_speed_the_rounds_up() -> None:
    """Arriving peers say hello (push): polling faster while a job's pods arrive would only load
    cluster DNS when it is busiest."""
    service = _service(rand=0.999)
    for t in range(5):
        _round(service, ["a"], float(t))
    _round(service, ["a", "b"], 10.0)
    # still capped at 1 s, equal jitter: between 0.5 and 1 s
    assert service.next_wakeup() == pytest.approx(10.0 + 1.0 * (0.5 + 0.5 * 0.999))


def test_identified_addresses_are_not_probed_again_but_a_push_may() -> None:
    service = _service()
    _due(service, 0.0)
    assert _answer(service, ["a", "b"], 0.0) == ["a", "b"]
    service.probed("a", None)
    service.probed("b", REFUSED)
    assert service.book.unidentified == {"b": REFUSED}
    assert _round(service, ["a", "b"], 5.0) == ["b"]
    assert not service.book.claim("a")
    assert service.book.claim("a", push=True)  # an unreached peer said hello from a reused one
    assert not service.book.claim("a", push=True)  # already in flight


def test_a_cut_short_answer_hands_the_ring_neighbour_to_names_once_its_probes_land() -> None:
    """Past a cut answer only the ring neighbour (and the coordinator) go by name at once: the
    others' addresses come from the coordinator (``agent.core.vouching``), however long they
    take: by name from every pod, they were the storm that kept 128 pods from releasing."""
    service = _service(peers=4)
    _due(service, 0.0)
    _answer(service, ["a", "b"], 0.0, truncated=True)
    service.probed("a", None)
    assert service.take_ask_by_name() == []  # b still out: it may be the peer we lack
    assert not service.reach.is_scheduled(1)
    service.probed("b", None)
    said = service.take_ask_by_name()  # said once
    assert [r.line.kind for r in said if isinstance(r, Report)] == [LogKind.TRUNCATED]
    assert service.reach.is_scheduled(1) and not service.reach.is_scheduled(2)
    assert service.take_ask_by_name() == []  # once per answer
    service.take_due(10 * DEFAULT_TIMING.vouch_wait)
    assert not service.reach.is_scheduled(2) and not service.reach.is_scheduled(3)
    assert _answer(service, ["a", "b"], 10.0) == [] and service.take_ask_by_name() == []  # whole


def test_failures_are_remembered_as_the_reason_and_rounds_stop_when_done() -> None:
    service = _service()
    _due(service, 0.0)
    service.answered(Resolution(failure=NXDOMAIN), 0.0)
    assert service.failure == NXDOMAIN and service.published == frozenset()
    service.reached_all(0.0, vouching=False)
    assert service.next_wakeup() is None and not _due(service, 100.0)


@pytest.mark.parametrize("out", [False, True], ids=["refresh-due", "refresh-out"])
def test_a_peer_restarting_while_a_refresh_is_due_keeps_the_rounds_going(out: bool) -> None:
    """Every peer reached, one refresh due (a contact not listed yet); then peer "b" restarts
    and the first probe of its new instance fails (a partition for a moment). The refresh is a
    full round, and the rounds go on probing "b". Found by the property test (sidecar, 5 pods):
    the refresh was the last round, and that pod never reached "b" again."""
    service = _service()
    _round(service, ["a", "b", "c"], 0.0)
    service.reached_all(0.0, vouching=True)
    refresh = service.next_wakeup() or math.inf
    if out:
        assert _due(service, refresh)
    service.restarted("b", refresh)
    assert out or _due(service, refresh)
    assert _answer(service, ["a", "b", "c"], refresh) == ["b"]
    service.probed("b", REFUSED)
    now = service.next_wakeup() or math.inf
    assert _due(service, now) and _answer(service, ["a", "b", "c"], now) == ["b"]


def test_a_push_from_an_address_dns_does_not_list_brings_the_next_round_forward() -> None:
    service = _service(rand=0.999)
    for t in range(6):  # quiet: rounds about a second apart
        _round(service, ["a"], float(t))
    assert (service.next_wakeup() or 0) > 5.5
    assert service.heard_from(1, "b", 5.02) == []  # not published (yet): not probed
    assert service.next_wakeup() == pytest.approx(5.1)  # but asked again soon
    _due(service, 5.1)
    assert _answer(service, ["a", "b"], 5.11) == ["b"]
    assert service.heard_from(1, "a", 5.2) == [ProbeAddress("a", pushed=True)]  # listed: now


def test_pods_arriving_one_after_another_do_not_each_cost_every_pod_a_round() -> None:
    """Each arriving pod says hello before DNS lists it to our last answer. The first such push
    brings the next round to 0.1 s; while they keep coming each brought-forward round waits
    twice as long as the one before (up to the normal pace); after a quiet while, 0.1 s again."""
    service = _service(rand=0.999)
    _round(service, ["a"], 0.0)
    gaps, now, listed = [], 0.0, ["a"]
    for i in range(5):  # a new pod every 50 ms, each one's hello before our next round
        last = now
        now += 0.05
        assert service.heard_from(1, f"new{i}", now) == []
        now = service.next_wakeup() or math.inf
        gaps.append(round(now - last, 3))
        listed.append(f"new{i}")
        _round(service, listed, now)
    assert gaps == [0.1, 0.2, 0.4, 0.8, 1.0]
    now += 10.0  # quiet
    _round(service, listed, now)
    assert service.heard_from(1, "late", now + 0.5) == []
    assert service.next_wakeup() == pytest.approx(now + 0.5)  # 0.1 s after our last round


def test_rounds_after_cut_short_answers_back_off_and_no_hello_hurries_them() -> None:
    """A cut-short answer lists the same first addresses every round, and the peers it leaves
    out are learnt from the coordinator: each round after one waits twice as long (1, 2, 4, 8,
    16, 32, 64, 128 s, then the cap: 240 s), and a
    hello from an address it does not list brings none forward (the next cut answer would not
    list it either). A whole answer brings the normal pace back."""
    service, cap = _service(rand=0.999), DEFAULT_TIMING.cut_round_cap
    now, ceilings = 0.0, []
    for _ in range(10):
        assert _due(service, now)
        for address in _answer(service, ["a", "b"], now, truncated=True):
            service.probed(address, None)
        wake = service.next_wakeup()
        assert wake is not None
        ceilings.append(round((wake - now) / (0.5 + 0.5 * 0.999), 3))
        assert service.heard_from(2, "c", now + 0.01) == []
        assert service.next_wakeup() == wake  # not brought forward
        now = wake
    assert ceilings == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, cap, cap] and cap == 240.0
    _round(service, ["a", "b"], now)  # whole again
    assert service.next_wakeup() == pytest.approx(now + 1.0 * (0.5 + 0.5 * 0.999))


def test_pods_given_one_answer_share_what_it_lists_and_a_sparse_pod_notes_a_cut() -> None:
    """One cut answer of 4,091 addresses handed to many pods (the in-memory cluster of 100,000
    hands each of its few kept answers to every pod) is one set of addresses, not one a pod: a
    copy each was about 25 GB at that size. A pod of a sparse graph, which probes nothing the
    answer lists, still learns that it was cut (membership past a cut, agent.core.vouching)."""
    answer = Resolution(tuple(f"10.0.{i // 250}.{i % 250}" for i in range(4091)), truncated=True)
    pods = []
    for _ in range(2):
        reach = Reach(8, now=0.0, rand=lambda: 0.5, scheduled={0})
        pods.append(
            ByService(reach, now=0.0, rand=lambda: 0.5, timing=DEFAULT_TIMING, probes_sweep=False)
        )
        assert pods[-1].answered(answer, 1.0) == [] and pods[-1].cut
    assert pods[0].published is pods[1].published and pods[0].lists("10.0.16.90")


def test_on_a_sparse_graph_rounds_stop_after_a_few_cut_answers_until_a_restart() -> None:
    """Issue 22: a sparse pod's round only says whether the answer is cut (its targets are
    asked by name), and each cut answer lists the same first addresses: past
    ``cut_rounds`` cut answers in a row no round is due, however long the pod waits (before:
    one at doubling intervals up to 240 s, 9-10 in a wait of minutes), nor brought forward by
    a refresh; a restart (a peer to reach again) starts them again."""
    reach = Reach(3, now=1.0, rand=lambda: 0.5, scheduled={0})
    service = ByService(reach, now=1.0, rand=lambda: 0.5, timing=DEFAULT_TIMING, probes_sweep=False)
    now, rounds = 1.0, 0
    while (wake := service.next_wakeup()) is not None:
        assert rounds < 10 and _due(service, wake)
        assert _answer(service, ["a", "b"], wake, truncated=True) == []
        now, rounds = wake, rounds + 1
    assert rounds == DEFAULT_TIMING.cut_rounds and service.cut
    service.reached_all(now + 1.0, vouching=True)  # a refresh would ask the same again
    assert service.next_wakeup() is None and not _due(service, now + 1000.0)
    service.restarted("a", now + 1000.0)
    assert _due(service, now + 1000.0)
