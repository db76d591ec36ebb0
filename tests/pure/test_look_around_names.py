"""Whom a coordinator's look-around asks DNS for (``Coordinator.not_arrived``): a look asks a
member's name when it does not target it, one query a member. Issue 22 measured a group
coordinator at 10,000 pods asking 33 names in one look (62 queries in all, the limit is 32)
for members that were connected to it, or whose sessions waited for the chain of reports.
Neither needs a look: a connected member says its arrival (or its ack, once released anywhere)
on its session, and a held session is admitted along the chain, whose break is one name.
"""

from __future__ import annotations

import pytest

from agent.core.backoff import Backoff
from agent.core.byname import ByName
from agent.core.effects import Attempt
from agent.core.groups import Tree
from agent.core.reach import Reach
from agent.core.roles import Coordinator
from agent.core.timing import DEFAULT_TIMING
from agent.protocol.wire import Ack, Arrive, Hello, Identity, Role

pytestmark = pytest.mark.timeout(10)


def _me(index: int, instance: str) -> Identity:
    return Identity("job", "", index, 8, 29300, instance)


def _coordinator() -> Coordinator:
    coordinator = Coordinator(_me(0, "c"))
    coordinator.reached_all("view", 0.1)
    return coordinator


def _join(coordinator: Coordinator, index: int) -> int:
    conn = 100 + index
    coordinator.joined(conn, Hello(_me(index, f"m{index}"), Role.MEMBER, "n"), 0.2)
    return conn


def test_a_connected_member_that_has_said_nothing_yet_is_not_looked_at() -> None:
    coordinator = _coordinator()
    for index in (1, 2, 3, 4):
        _join(coordinator, index)
    coordinator.received(_join(coordinator, 5), Arrive("view"), 0.3)  # arrived: it matches
    coordinator.received(103, Arrive("another view"), 0.3)  # reached other instances
    coordinator.received(104, Ack(), 0.3)  # released by another instance of index 0
    # 1 and 2 will arrive on their sessions; 6 and 7 have none here (they may be with an
    # older instance of index 0: only a hello from this one tells them)
    assert coordinator.not_arrived() == [3, 4, 6, 7]


def test_of_the_members_whose_sessions_wait_to_be_vouched_for_only_the_lowest() -> None:
    coordinator = _coordinator()
    held = {3: "10.0.0.3", 5: "10.0.0.5", 6: "10.0.0.6"}
    assert coordinator.not_arrived(held.get) == [1, 2, 3, 4, 7]
    assert coordinator.not_arrived() == [1, 2, 3, 4, 5, 6, 7]


def test_the_root_does_not_look_at_a_group_coordinator_whose_group_is_still_arriving() -> None:
    # 16 pods in groups of 4: the root holds the sessions of 1-3 and of group coordinators 4,
    # 8 and 12. The root of 100,000 pods asked 33 group coordinators' names in one look while
    # their groups arrived (64 queries in all): each says the rest of its group on its session.
    me = Identity("job", "u", 0, 16, 29300, "c")
    root = Coordinator(me, sparse=True, tree=Tree.of(16))
    root.reached_all("0" * 32, 0.1, "0" * 32)
    for index in (4, 8, 12):
        hello = Hello(Identity("job", "u", index, 16, 29300, f"m{index}"), Role.MEMBER, "n")
        root.joined(100 + index, hello, 0.2)
    root.received(104, Arrive("1" * 32, "2" * 32, count=2), 0.3)  # 2 of group 4's 4 pods
    root.received(108, Arrive("1" * 32, "2" * 32, count=4), 0.3)  # all of group 8: counted
    assert root.not_arrived() == [1, 2, 3]
    root.closed(104, 0.4)  # its session ended: nothing more will come on it
    assert root.not_arrived() == [1, 2, 3, 4]


def test_a_look_asks_a_few_names_whatever_the_number_of_groups() -> None:
    """The root of 100,000 pods has ~317 group coordinators as members: while they are late, a
    look said hello to 64 of them, a query of each name, and the root's queries grew with the
    number of groups. Now at most 8 a look, in turn, so each is looked at within ⌈317 / 8⌉
    looks and a look costs the same at any size."""
    # the root targets its ring and chords, not the group coordinators: each look asks names
    reach = Reach(318, now=0.0, rand=lambda: 0.5, backoff=Backoff(), targets=(0,))
    look = ByName(reach, DEFAULT_TIMING)
    look.reached_all(0.0, vouching=False)
    waiting, seen, asked = list(range(1, 318)), set[int](), []
    for n in range(40):
        batch = look.look_around(float(n), waiting)
        asked.append(len(batch))
        seen |= {a.index for a in batch if isinstance(a, Attempt)}
    assert max(asked) <= 8, asked
    assert seen == set(waiting)
