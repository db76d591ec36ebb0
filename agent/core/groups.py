"""The tree of coordinators: which pod each pod holds its barrier session with.

On a sparse graph (``--reach sparse``) the pods form groups of ``G = ⌈√n⌉`` consecutive indices;
the group's first index is its *group coordinator*, and index 0 is the *root* (and group 0's
coordinator). A member holds one session, to its group coordinator; a group coordinator holds
one to the root and one from each of its ``G - 1`` members; the root holds one from each member
of group 0 and from each other group's coordinator: about ``2√n`` sessions, the most any process
holds (316 + 316 at 100,000 pods), against ``n - 1`` at the root of a flat barrier.

Arrivals fan in (a group coordinator sends the root one aggregate of its group's live arrivals,
``agent.core.group``) and the release fans out the same way. On the complete graph (``--reach
all``) there is one group: every pod holds its session with index 0, as before the tree.

Every pod computes the same tree from ``n`` alone, in O(1). Pure.
"""

from __future__ import annotations

from math import isqrt

from agent.values import value

__all__ = ["Tree", "group_size"]


def group_size(n: int) -> int:
    """``⌈√n⌉``: the fewest pods a group has so that ``n`` pods make at most that many groups."""
    if n <= 1:
        return 1
    root = isqrt(n - 1)
    return root + 1


@value
class Tree:
    """The tree of ``n`` pods in groups of ``size`` (``size >= n``: one group, the flat barrier)."""

    n: int
    size: int

    @classmethod
    def of(cls, n: int, *, flat: bool = False) -> Tree:
        """The tree of a Job of ``n`` pods: ``flat`` (the complete graph) is one group."""
        return cls(n, max(1, n) if flat else group_size(n))

    def leader(self, index: int) -> int:
        """The coordinator of ``index``'s group (its first index)."""
        return index - index % self.size

    def parent(self, index: int) -> int:
        """Whom ``index`` holds its session with: a member its group coordinator, a group
        coordinator the root; the root itself has none (0)."""
        leader = self.leader(index)
        return 0 if leader == index else leader

    def coordinates(self, index: int) -> bool:
        """Whether ``index`` coordinates a group (the root does, group 0)."""
        return index % self.size == 0

    def group(self, leader: int) -> range:
        """The indices of the group ``leader`` coordinates, itself included."""
        return range(leader, min(leader + self.size, self.n))

    def children(self, index: int) -> frozenset[int]:
        """Whose sessions ``index`` holds: a group coordinator its group's other members, the
        root also every other group's coordinator; a plain member nobody."""
        if not self.coordinates(index):
            return frozenset()
        members = set(self.group(index)) - {index}
        if index == 0:
            members |= set(range(self.size, self.n, self.size))
        return frozenset(members)

    def weight(self, index: int) -> int:
        """How many pods one complete arrival of ``index`` at its parent stands for: its whole
        group for a group coordinator below the root, else itself."""
        if index != 0 and self.coordinates(index):
            return len(self.group(index))
        return 1
