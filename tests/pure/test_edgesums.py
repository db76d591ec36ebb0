"""Arrivals that compose: the edge sums agree exactly when every assigned edge was proven both
ways between the counted instances (pure, property-tested over graphs and instances)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.core.edgesums import EdgeSums, EdgeTally, to_hex
from agent.core.effects import Released, Send
from agent.core.graph import ReachGraph
from agent.core.roles import Coordinator
from agent.errors import WireError
from agent.protocol.wire import Arrive, Hello, Identity, Release, Role, decode, encode
from tests.support.budget import budget

pytestmark = pytest.mark.timeout(60)

SUMS = EdgeSums(b"uid-1")


def _tally(graph: ReachGraph, instance: dict[int, str], seen: dict[tuple[int, int], str]) -> bool:
    """Whether the sums of every pod's arrival agree, pod ``i`` having seen ``seen[i, j]``."""
    tally, own = EdgeTally(), (0, 0)
    for i in range(graph.n):
        neighbours = graph.neighbours(i)
        a = SUMS.reached(i, [(j, seen[i, j]) for j in neighbours])
        b = SUMS.owed(i, neighbours, instance[i])
        if i == 0:
            own = (a, b)
        else:
            tally.arrive(i, a, b)
    return tally.agree(*own)


@settings(max_examples=budget(0.6), deadline=None)
@given(
    n=st.integers(2, 14),
    degree=st.integers(4, 8),
    key=st.binary(min_size=1, max_size=8),
    wrong=st.data(),
)
def test_the_sums_agree_exactly_when_every_edge_saw_the_counted_instance(
    n: int, degree: int, key: bytes, wrong: st.DataObject
) -> None:
    graph = ReachGraph(n, key, degree)
    instance = {i: f"{i:016x}-0000000{i % 10}" for i in range(n)}
    seen = {(i, j): instance[j] for i in range(n) for j in graph.neighbours(i)}
    assert _tally(graph, instance, seen)
    # one end of one assigned edge reached another instance (a restart it did not see)
    edge = wrong.draw(st.sampled_from(sorted(seen)))
    stale = dict(seen)
    stale[edge] = "ffffffffffffffff-00000000"
    assert not _tally(graph, instance, stale)


def test_a_sum_that_leaves_out_one_neighbour_does_not_agree() -> None:
    graph = ReachGraph(12, b"uid-1", 6)
    tally = EdgeTally()
    for i in range(1, 12):
        neighbours = graph.neighbours(i)
        skipped = neighbours[1:] if i == 5 else neighbours
        tally.arrive(i, SUMS.reached(i, [(j, "") for j in skipped]), SUMS.owed(i, neighbours, ""))
    own = graph.neighbours(0)
    assert not tally.agree(SUMS.reached(0, [(j, "") for j in own]), SUMS.owed(0, own, ""))


def test_an_arrival_counts_only_while_its_session_lives() -> None:
    """A sparse coordinator releases on one live arrival an index with agreeing sums; a lost
    session uncounts its arrival until the member arrives again."""
    me = Identity("job", "uid-1", 0, 3, 29300, instance="0000000000000001-00000000")
    graph = ReachGraph(3, b"uid-1", 2)  # the ring 0-1-2: every pod reaches both others

    def sums(i: int) -> tuple[str, str]:
        nb = graph.neighbours(i)
        return to_hex(SUMS.reached(i, [(j, "") for j in nb])), to_hex(SUMS.owed(i, nb, ""))

    coordinator = Coordinator(me, sparse=True)
    for conn, index in ((11, 1), (12, 2)):
        hello = Hello(Identity("job", "uid-1", index, 3, 29300), Role.MEMBER, "n")
        coordinator.joined(conn, hello, 0.0)
    view, owed = sums(0)
    assert coordinator.reached_all(view, 0.0, owed) == []
    coordinator.received(11, Arrive(*sums(1)), 0.1)
    coordinator.closed(11, 0.2)  # pod 1's session ends: its arrival counts no more
    assert coordinator.received(12, Arrive(*sums(2)), 0.3) == []
    hello = Hello(Identity("job", "uid-1", 1, 3, 29300), Role.MEMBER, "n")
    coordinator.joined(13, hello, 0.4)
    actions = coordinator.received(13, Arrive(*sums(1)), 0.5)
    assert isinstance(actions[-1], Released)
    releases = {a.conn: a.message for a in actions if isinstance(a, Send)}
    assert releases[13] == Release(*sums(1)) and releases[12] == Release(*sums(2))


def test_sums_travel_as_32_hex_digits_and_nothing_else() -> None:
    arrival = Arrive("0" * 32, "a" * 32)
    assert decode(encode(arrival)) == arrival
    assert b"owed" not in encode(Arrive("v"))  # the complete graph's arrival, as before
    for bad in ("A" * 32, "a" * 31, "g" * 32, ""):
        line = encode(Arrive("v")).replace(
            b'"view":"v"', b'"view":"v","owed":"' + bad.encode() + b'"'
        )
        with pytest.raises(WireError):
            decode(line)
