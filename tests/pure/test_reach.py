"""The per-peer retry state: who is tried when (pure, simulated time)."""

from __future__ import annotations

import pytest

from agent.core.backoff import Backoff
from agent.core.causes import Cause, Failure
from agent.core.reach import Reach, view_digest
from agent.protocol.instance import instance_id

pytestmark = pytest.mark.timeout(10)

NXDOMAIN = Failure("NXDOMAIN", Cause.NXDOMAIN)
REFUSED = Failure("connect to port 29300: refused", Cause.CONNECT_REFUSED)


def test_everyone_is_tried_at_once_then_backs_off() -> None:
    reach = Reach(3, now=0.0, rand=lambda: 0.999)
    assert reach.start_due(0.0) == [0, 1, 2]
    assert reach.start_due(0.0) == []  # in flight
    reach.failed(1, NXDOMAIN, 0.01)
    reach.succeeded(0, "10.0.0.1", 0.01)
    assert reach.next_wakeup() == pytest.approx(0.01 + 0.1 * 0.999)
    assert reach.start_due(0.05) == []
    assert reach.start_due(0.2) == [1]
    assert [p.index for p in reach.missing()] == [1, 2]


def test_backoff_grows_to_the_cap_with_jitter() -> None:
    backoff = Backoff(base=0.05, cap=1.0)
    assert [backoff.delay(n, 1.0) for n in range(1, 7)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    assert backoff.delay(3, 0.0) == 0.025  # never zero: no spinning on instant refusals
    assert backoff.delay(10_000, 0.5) == 0.5


def test_a_push_retries_at_once_even_mid_attempt() -> None:
    reach = Reach(2, now=0.0, rand=lambda: 0.999)
    reach.start_due(0.0)
    for _ in range(5):
        reach.failed(1, REFUSED, 0.0)
        reach.start_due(100.0)
    assert reach.peers[1].in_flight
    reach.nudge(1, 100.0)  # peer 1 said hello while its attempt was in flight
    reach.failed(1, REFUSED, 100.0)
    assert reach.start_due(100.0) == [1]  # no backoff after a push


def test_concurrency_is_bounded() -> None:
    reach = Reach(10, now=0.0, rand=lambda: 0.5, max_in_flight=4)
    assert reach.start_due(0.0) == [0, 1, 2, 3]
    assert reach.next_wakeup() is None  # nothing to do until an attempt lands
    reach.succeeded(2, "a", 0.1)
    assert reach.start_due(0.1) == [4]


def test_done_counts_each_peer_once() -> None:
    reach = Reach(2, now=0.0, rand=lambda: 0.5)
    reach.start_due(0.0)
    reach.succeeded(0, "a", 0.0)
    reach.succeeded(0, "a", 0.0)
    assert not reach.done
    reach.succeeded(1, "b", 0.0)
    assert reach.done and reach.peers[1].reached_at == 0.0


I1, J1, J2, J3 = (instance_id(started, tag) for started, tag in ((1, 0), (1, 1), (2, 1), (3, 1)))


def test_a_newer_instance_of_a_reached_peer_is_forgotten_and_tried_again() -> None:
    reach = Reach(2, now=0.0, rand=lambda: 0.5)
    reach.start_due(0.0)
    reach.succeeded(0, "a", 0.0, instance=I1)
    reach.succeeded(1, "b", 0.0, instance=J1)
    assert reach.done
    assert not reach.note_instance(1, J1) and not reach.note_instance(1, "")
    assert reach.note_instance(1, J2)
    reach.forget(1, 5.0)
    assert not reach.done and reach.peers[1].failure.reason.startswith("restarted")
    assert not reach.note_instance(1, J2)  # not reached any more: nothing to forget
    assert reach.stale(1, J1)  # the old instance, answering at a stale address, is not it
    reach.succeeded(1, "c", 5.1, instance=J2)
    assert reach.done and reach.peers[1].address == "c"


def test_an_older_instance_never_replaces_a_newer_one() -> None:
    """Two live instances of one index: the pod follows the newer and ignores the older."""
    reach = Reach(2, now=0.0, rand=lambda: 0.5)
    reach.start_due(0.0)
    reach.succeeded(1, "b", 0.0, instance=J2)
    assert not reach.note_instance(1, J1)
    assert reach.stale(1, J1) and not reach.stale(1, J2) and not reach.stale(1, J3)


def test_peers_left_to_bulk_discovery_are_attempted_once_scheduled() -> None:
    reach = Reach(4, now=0.0, rand=lambda: 0.5, scheduled={2})
    assert reach.start_due(0.0) == [2]
    assert reach.next_wakeup() is None  # 2 in flight, the others are not this one's to try
    reach.schedule([0, 2, 3])  # a cut-short Service answer left them out: ask by name
    assert reach.start_due(0.0) == [0, 3]
    reach.failed(0, NXDOMAIN, 0.0)
    assert reach.next_wakeup() is not None and reach.start_due(0.0) == []


def test_a_views_digest_is_sha256s_whichever_implementation_computes_it() -> None:
    """Pods compare these digests: CPython's own SHA-256 (not hashlib's OpenSSL one) must give
    the same 32 hex digits, as before."""
    import hashlib

    view = [instance_id(1_700_000_000_000_000_000 + i, i) for i in range(5)]
    assert view_digest(view) == hashlib.sha256("\n".join(view).encode()).hexdigest()[:32]
    assert view_digest([]) == hashlib.sha256(b"").hexdigest()[:32]
