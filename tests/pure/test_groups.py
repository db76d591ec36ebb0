"""The tree of coordinators (``agent.core.groups``): groups of ⌈√n⌉, every pod's session
leads to the root in at most two hops, and no process holds more than about 2√n sessions
(pure, property-tested)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.core.groups import Tree, group_size

pytestmark = pytest.mark.timeout(30)

sizes = st.integers(min_value=1, max_value=200_000)


@given(sizes)
def test_a_group_is_the_ceiling_of_the_square_root(n: int) -> None:
    g = group_size(n)
    assert (g - 1) ** 2 < n <= g * g
    assert g == math.ceil(math.sqrt(n)) or n > 2**50


@given(sizes, st.data())
def test_every_pod_reaches_the_root_through_its_group_coordinator(
    n: int, data: st.DataObject
) -> None:
    """A member's parent is its group's first index; a group coordinator's is the root; the
    group coordinator holds the member's session (``children``) and covers it (``group``)."""
    tree = Tree.of(n)
    i = data.draw(st.integers(0, n - 1))
    leader = tree.leader(i)
    assert leader <= i < leader + tree.size and tree.coordinates(leader)
    assert i in tree.group(leader)
    if i == 0:
        return
    parent = tree.parent(i)
    assert i in tree.children(parent)
    assert parent == 0 or tree.parent(parent) == 0  # at most two hops to the root
    assert parent == (0 if leader == i else leader)


@given(st.integers(min_value=1, max_value=3_000))
def test_the_root_counts_every_pod_exactly_once(n: int) -> None:
    """The sessions partition the Job: every index but 0 is one coordinator's child, and
    the root's children weigh n - 1 pods in all (a group coordinator's arrival stands for its
    group)."""
    tree = Tree.of(n)
    held = [i for c in range(0, n, tree.size) for i in tree.children(c)]
    assert sorted(held) == list(range(1, n))
    assert sum(tree.weight(c) for c in tree.children(0)) == n - 1
    assert all(not tree.children(i) for i in range(n) if not tree.coordinates(i))


@given(sizes, st.data())
def test_no_process_holds_more_than_about_two_root_n_sessions(n: int, data: st.DataObject) -> None:
    tree = Tree.of(n)
    i = data.draw(st.sampled_from([0, tree.leader(n - 1), n - 1, tree.size % n]))
    sessions = len(tree.children(i)) + (i != 0)
    assert sessions <= 2 * group_size(n)


@pytest.mark.parametrize("n", [1, 2, 7, 300])
def test_the_complete_graph_keeps_one_coordinator(n: int) -> None:
    tree = Tree.of(n, flat=True)
    assert tree.children(0) == frozenset(range(1, n))
    assert all(tree.parent(i) == 0 and tree.weight(i) == 1 for i in range(1, n))


def test_at_100000_pods_the_root_holds_632_sessions() -> None:
    tree = Tree.of(100_000)
    assert tree.size == 317
    assert len(tree.children(0)) == 316 + 315
    assert len(tree.children(317)) + 1 == 317
