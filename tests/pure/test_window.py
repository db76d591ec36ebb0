"""The probe window (agent.core.window) and the book that keeps a round's addresses waiting for
it (agent.core.probebook): a pod that meets timeouts sends fewer probes at once, one that gets
answers sends more, and every address of a round is probed once however small the window.

What a user would notice without it: 128 or 256 pods on two cores whose every probe times out,
sent again each round, and nobody released (a congestion collapse, docs/at-scale.md)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.core.causes import Cause, Failure
from agent.core.discovery import ByService
from agent.core.effects import ProbeAddress
from agent.core.inputs import Resolution
from agent.core.probebook import ProbeBook
from agent.core.reach import Reach
from agent.core.timing import DEFAULT_TIMING
from agent.core.window import FLOOR, INITIAL, Window

pytestmark = pytest.mark.timeout(30)

LATE = Failure("hello failed: no message before the deadline", Cause.HELLO_FAILED)
TIMED_OUT = Failure("connect to port 29300 timed out", Cause.CONNECT_TIMEOUT)
REFUSED = Failure("connect to port 29300: refused", Cause.CONNECT_REFUSED)


def _addresses(n: int) -> list[str]:
    return [f"10.0.{i // 250}.{i % 250 + 1}" for i in range(n)]


def test_answers_grow_the_window_to_its_cap_within_a_few_windows() -> None:
    window = Window(cap=256)
    assert window.size == INITIAL
    windows = 0
    while window.size < 256:
        numbers = [window.send() for _ in range(window.room)]
        for number in numbers:
            window.landed(number, None)
        windows += 1
    assert windows == 4  # 16, 32, 64, 128, 256: doubled each window (slow start)


def test_a_window_of_timeouts_halves_it_once_not_once_a_probe() -> None:
    window = Window(cap=256, initial=64)
    numbers = [window.send() for _ in range(64)]
    for number in numbers:
        window.landed(number, LATE.cause)
    assert window.size == 32  # 64 timeouts of one burst: one signal
    numbers = [window.send() for _ in range(window.room)]
    window.landed(numbers[0], TIMED_OUT.cause)  # sent after the cut: a signal of its own
    assert window.size == 16


def test_timeouts_in_a_row_stop_at_the_floor_and_it_then_grows_one_a_window() -> None:
    window = Window(cap=256)
    for _ in range(10):
        numbers = [window.send() for _ in range(window.room)]
        for number in numbers:
            window.landed(number, TIMED_OUT.cause)
    assert window.size == FLOOR and window.room == FLOOR
    for _ in range(3):  # past the last halving: additive increase, about one a window
        numbers = [window.send() for _ in range(window.room)]
        for number in numbers:
            window.landed(number, None)
    assert FLOOR < window.size <= FLOOR + 3


def test_refusals_are_answers_they_never_shrink_the_window() -> None:
    """A pod whose agent is not up yet refuses at once: that costs nothing, and 255 peers still
    starting must not slow the pod that probes them."""
    window = Window(cap=256)
    numbers = [window.send() for _ in range(window.room)]
    for number in numbers:
        window.landed(number, REFUSED.cause)
    assert window.size == 2 * INITIAL


def _service(peers: int) -> ByService:
    reach = Reach(peers, now=0.0, rand=lambda: 0.5, scheduled={0})
    return ByService(reach, now=0.0, rand=lambda: 0.5, timing=DEFAULT_TIMING)


def _probes(effects: Sequence[object]) -> list[str]:
    return [e.address for e in effects if isinstance(e, ProbeAddress)]


def test_a_round_of_255_addresses_goes_out_a_window_at_a_time_each_probed_once() -> None:
    service = _service(256)
    assert service.take_due(0.0)
    listed = _addresses(255)
    out = _probes(service.answered(Resolution(tuple(listed)), 0.0))
    assert len(out) == INITIAL
    probed: list[str] = []
    while out:
        address = out.pop(0)
        probed.append(address)
        more = _probes(service.probed(address, LATE))  # every probe times out
        out += more
        # (probes out when the window halved stay out; none more goes until it has room)
        assert not more or len(out) <= service.book.window.size
        assert service.book.window.out == len(out)
    assert sorted(probed) == sorted(listed)  # none skipped, none twice
    assert not service.book.round_out  # the next round may come
    assert service.book.window.size == FLOOR


def test_a_peer_that_said_hello_is_probed_at_once_even_with_the_window_full() -> None:
    service = _service(300)
    assert service.take_due(0.0)
    listed = _addresses(299)
    out = _probes(service.answered(Resolution(tuple(listed)), 0.0))
    assert service.book.window.room == 0
    waiting = listed[-1]  # not out yet: it waits for room
    assert waiting not in out
    assert service.sighted(7, waiting, 0.0) == [ProbeAddress(waiting, pushed=True)]
    assert service.sighted(7, waiting, 0.0) == []  # one probe out at a time
    sent = [waiting, *out]
    while out:  # the rest of the round goes out as probes land, never it again
        more = _probes(service.probed(out.pop(0), None))
        out += more
        sent += more
    service.probed(waiting, None)
    assert sorted(sent) == sorted(listed)
    assert not service.book.round_out


@given(
    events=st.lists(
        st.tuples(
            st.sampled_from(["round", "push", "land"]),
            st.integers(0, 39),
            st.sampled_from([None, LATE, TIMED_OUT, REFUSED]),
        ),
        max_size=200,
    )
)
def test_the_window_bounds_what_is_out_and_no_claimed_address_is_lost(
    events: list[tuple[str, int, Failure | None]],
) -> None:
    """Whatever rounds, pushes and landings come: only pushes go past the window, an address
    is out once at a time, and every address claimed is out or waiting until it lands."""
    book = ProbeBook(max_in_flight=8)
    out: set[str] = set()
    for kind, i, failure in events:
        address = f"a{i}"
        if kind == "round":
            sent = book.start_round(f"a{j}" for j in range(i, 40, 3))
        elif kind == "push":
            sent = [address] if book.push(address) else []
        else:
            sent = book.probed(address, failure) if address in out else []
            out.discard(address)
        assert not out & set(sent), "an address out twice at once"
        out |= set(sent)
        assert book.window.out == len(out)
        assert FLOOR <= book.window.size <= 8
    while out:  # nothing else comes: what waits drains as the probes out land
        out |= set(book.probed(out.pop(), None))
    assert not book.round_out


def _shared_cpu(books: list[ProbeBook], peers: list[list[str]], capacity: int, ticks: int) -> int:
    """Pods whose probes share a CPU that answers ``capacity`` probes within a probe's
    deadline, shared alike by every probe out (as processes share cores): past it, every probe
    out gets less than it needs and times out, its CPU spent for nothing. A tick is one
    deadline; a round that lands leaves its unanswered addresses to the next. Ticks until
    every pod has reached all its peers (``ticks`` if never)."""
    left = [set(p) for p in peers]
    out = [book.start_round(p) for book, p in zip(books, peers, strict=True)]
    for tick in range(ticks):
        congested = sum(map(len, out)) > capacity
        for i, book in enumerate(books):
            landed, out[i] = out[i], []
            for address in landed:
                out[i] += book.probed(address, LATE if congested else None)
                if not congested:
                    left[i].discard(address)
            if not book.round_out and left[i]:  # the next round: what is still missing
                out[i] += book.start_round(sorted(left[i]))
        if not any(left):
            return tick + 1
    return ticks


def test_pods_sharing_a_cpu_converge_where_a_fixed_window_never_reaches_anyone() -> None:
    """The collapse, in a model: 32 pods all-to-all on a CPU that answers 128 probes a
    deadline. With every probe out at once (a fixed 256 a pod, so all 31 at once) nothing ever
    lands in time; with the window, every pod reaches every pod."""
    n, capacity = 32, 128
    peers = [[f"p{j}" for j in range(n) if j != i] for i in range(n)]
    fixed = [ProbeBook(max_in_flight=256) for _ in range(n)]
    for book in fixed:
        book.window = Window(cap=256, initial=256, floor=256)
    assert _shared_cpu(fixed, peers, capacity, ticks=100) == 100  # never: a collapse
    windowed = [ProbeBook(max_in_flight=256) for _ in range(n)]
    ticks = _shared_cpu(windowed, peers, capacity, ticks=100)
    assert ticks < 100
    # and not far from the best possible: n(n-1) probes at capacity a deadline
    assert ticks <= 3 * (n * (n - 1) // capacity + 1)
