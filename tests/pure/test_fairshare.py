"""Which connection a full handshake bound drops (``agent.core.fairshare``): the oldest of the
source address holding the most, the newcomer counted with its own. The real-process versions
are tests/faults/test_flood_sources.py (agent port) and test_health_floods.py (health port).
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.core.fairshare import FairShare
from tests.support.budget import budget

pytestmark = pytest.mark.timeout(30)


def _share(*addresses: str) -> FairShare:
    share = FairShare()
    for key, address in enumerate(addresses):
        share.add(address, key)
    return share


def test_a_flood_loses_its_own_oldest_not_the_peer_waiting_longest() -> None:
    share = _share("peer", *["flood"] * 5, "other")
    assert share.victim("other") == ("flood", 1)
    assert share.victim("flood") == ("flood", 1)


def test_between_addresses_holding_as_many_the_one_waiting_longest_goes() -> None:
    """A bound full of single peers (a Job larger than the bound) drops as it always did."""
    assert _share("a", "b", "c").victim("d") == ("a", 0)
    assert _share("a", "b", "c").victim("b") == ("b", 1)  # its own one more: it holds the most


def test_removed_keys_no_longer_count() -> None:
    share = _share("flood", "flood", "peer")
    assert share.remove("flood", 0) and not share.remove("flood", 0)
    assert not share.remove("nobody", 7)
    assert len(share) == 2
    assert share.victim("peer") == ("peer", 2)  # the newcomer makes it the heaviest
    assert share.remove("flood", 1) and share.remove("peer", 2)
    assert len(share) == 0 and share.victim("x") is None


@settings(max_examples=budget(1), deadline=None)
@given(st.lists(st.sampled_from("abcde"), min_size=1, max_size=40), st.sampled_from("abcdef"))
def test_the_victim_is_always_the_oldest_of_an_address_holding_the_most(
    addresses: list[str], newcomer: str
) -> None:
    share = _share(*addresses)
    address, key = share.victim(newcomer) or ("", -1)
    held = {a: [k for k, b in enumerate(addresses) if b == a] for a in set(addresses)}
    weight = {a: len(keys) + (a == newcomer) for a, keys in held.items()}
    assert weight[address] == max(weight.values())
    assert key == held[address][0]
    heaviest = [a for a in held if weight[a] == weight[address]]
    assert key == min(itertools.chain(*(held[a][:1] for a in heaviest)))


@settings(max_examples=budget(1), deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.sampled_from("abcd")), max_size=60))
def test_the_counts_follow_every_add_and_remove(steps: list[tuple[bool, str]]) -> None:
    """Keys added and removed in any order: the victim is the one a fresh count picks."""
    share, live = FairShare(), dict[int, str]()
    for key, (adding, address) in enumerate(steps):
        if adding or not live:
            share.add(address, key)
            live[key] = address
        else:  # the oldest or the newest goes, as a bound drops one or a handshake ends
            gone = min(live) if address in "ab" else max(live)
            assert share.remove(live.pop(gone), gone)
        fresh = FairShare()
        for k in sorted(live):
            fresh.add(live[k], k)
        assert [share.victim(n) for n in "abcde"] == [fresh.victim(n) for n in "abcde"]
    assert len(share) == len(live)
