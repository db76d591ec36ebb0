"""Whom each pod must reach: the graph of assigned edges every pod computes alike.

Up to ``ALL_TO_ALL_MAX`` pods, and whenever the degree asked for is at least ``n - 1``, the graph
is complete: every pod reaches every pod, today's guarantee. Above it, each pod reaches its ring
neighbours (``i ± 1``, ``i ± 2``) and its two neighbours on each of ``r`` random rings: ring
``s`` visits the indices in the order of a permutation ``π_s`` keyed by the Job's uid, so pod
``i``'s neighbours on it are ``π_s(π_s⁻¹(i) ± 1)``. What a release can then promise
(docs/at-scale.md):

- the graph is symmetric (an edge is assigned to both its ends, and proven both ways), and
  connected for every ``n >= 2`` (the ring alone is), so any split of the pods into groups that
  cannot reach each other cuts an assigned edge and holds the barrier;
- a union of random Hamiltonian cycles is an expander with high probability: a split cuts not
  one edge but about ``r`` for every pod on its smaller side;
- a failure between one particular pair is seen only if that pair is an assigned edge, about
  ``degree / (n - 1)`` of the pairs.

Every pod computes its own neighbours in O(degree) time and memory, without a table of ``n``
(``agent.core.permutation``): the same tuple in every pod of the Job, in any process or Python
version, since nothing here depends on ``hash()`` or on a random generator's state.

Pure: no I/O.
"""

from __future__ import annotations

from agent.core.permutation import KeyedPermutation

__all__ = [
    "ALL_TO_ALL_MAX",
    "DEGREE_CAP",
    "LOCAL_REACH",
    "ReachGraph",
    "default_degree",
    "sparse_degree",
]

#: The largest Job whose pods reach every pod by default. All-to-all costs a pod about 1 ms of
#: CPU per peer (probes sent, probes answered, their handshakes): 104 ms a pod at N = 3 and
#: 166 ms at N = 64 in docs/benchmarks.md. At 256 that is ~0.36 s a pod (3.6 s under a 100m CPU
#: limit) against ~0.12 s at the sparse degree 18 of N = 257, and it grows linearly after.
ALL_TO_ALL_MAX = 256
#: The most edges a pod is given by default: a pod that had to ask DNS for each neighbour by
#: name would ask 24 names, and with the Service's name and its two coordinators' stay under
#: 32 queries with room for five retries (issue 22's per-pod DNS budget).
DEGREE_CAP = 24
#: ring offsets ±1 .. ±LOCAL_REACH: the ring stays connected when any one pod is missing
LOCAL_REACH = 2


def default_degree(n: int) -> int:
    """Edges a pod is given by default in a Job of ``n`` pods: all of them (``n - 1``) up to
    ``ALL_TO_ALL_MAX``, then ``2 ⌈log₂ n⌉`` (18 at 257 pods, 24 from 2,049 on), at most
    ``DEGREE_CAP``."""
    if n <= ALL_TO_ALL_MAX:
        return max(0, n - 1)
    return sparse_degree(n)


def sparse_degree(n: int) -> int:
    """The degree of a sparse graph of ``n`` pods when none is asked for (``--reach sparse``
    alone): ``2 ⌈log₂ n⌉``, at least the ring's 4 and at most ``DEGREE_CAP``."""
    return max(2 * LOCAL_REACH, min(2 * (n - 1).bit_length(), DEGREE_CAP))


class ReachGraph:
    """The assigned edges of a Job of ``n`` pods, keyed by ``key`` (the Job's uid), each pod
    given at most ``degree`` of them (an odd degree is served as the even one below it: each
    ring gives a pod two edges). ``degree >= n - 1`` is the complete graph."""

    __slots__ = ("_local", "_neighbours", "_rings", "degree", "n")

    def __init__(self, n: int, key: bytes, degree: int) -> None:
        if n < 1:
            raise ValueError(f"a Job of {n} pods has no graph")
        self.n = n
        self.degree = degree
        if degree < 2 and not self.complete:
            raise ValueError(f"degree {degree}: a pod needs two edges for the graph to be a ring")
        local = min(LOCAL_REACH, degree // 2)
        rings = 0 if self.complete else (degree - 2 * local) // 2
        self._local = range(1, local + 1)
        self._rings = tuple(KeyedPermutation(n, key, stream) for stream in range(rings))
        #: each pod's edges once worked out: a pod asks for its own three times as it starts,
        #: and one graph serves every core of the in-memory cluster and its checker
        self._neighbours: dict[int, tuple[int, ...]] = {}

    @property
    def complete(self) -> bool:
        """Every pod reaches every pod."""
        return self.degree >= self.n - 1

    def neighbours(self, i: int) -> tuple[int, ...]:
        """Pod ``i``'s assigned edges, in index order, never ``i`` itself: ``j`` is among them
        exactly when ``i`` is among ``j``'s."""
        if not 0 <= i < self.n:
            raise ValueError(f"pod {i} is outside a Job of {self.n} pods")
        if self.complete:
            return (*range(i), *range(i + 1, self.n))
        known = self._neighbours.get(i)
        if known is None:
            known = self._neighbours[i] = self._sparse(i)
        return known

    def _sparse(self, i: int) -> tuple[int, ...]:
        n = self.n
        found = {(i + d) % n for d in self._local} | {(i - d) % n for d in self._local}
        for ring in self._rings:
            at = ring.inverse(i)
            found.add(ring.forward((at + 1) % n))
            found.add(ring.forward((at - 1) % n))
        return tuple(sorted(found))
