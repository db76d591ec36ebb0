"""How well the graph of assigned edges (``agent.core.graph``) holds a Job together, measured.

For each size and key it builds every pod's neighbours with the shipped ``ReachGraph`` and
prints one row: the degree, the share of pairs that are assigned edges, ``λ₂`` of the
normalised adjacency beside ``2 sqrt(K - 1) / K`` (the Alon-Boppana bound, which a random
``K``-regular graph almost meets: Friedman), the conductance every cut has at least (Cheeger:
``(1 - λ₂) / 2``), and the worst cuts a search found: the sweep of ``λ₂``'s Ritz vector (an
upper bound on the true minimum) and the halves along the ring, the split the ring alone holds
by six edges.
Usage: ``.venv/bin/python -m tools.graph_expansion [--sizes 1000,100000] [--keys 3]``
(about a minute a row at 100,000 pods on this machine; rows go into docs/at-scale.md).

``λ₂`` comes from plain-Python Lanczos (the test venv has no numpy) on ``D^-1/2 A D^-1/2``
with the top eigenvector (``sqrt(degree)``, eigenvalue 1) projected out. A Ritz value never
exceeds the eigenvalue it approaches, so the estimate after half the steps is printed too, to
show how far it was still moving.
"""

from __future__ import annotations

import argparse
import math
import operator
import random
import time
from array import array
from collections.abc import Sequence
from typing import TypeAlias

from agent.core.graph import ReachGraph, default_degree

Adjacency = Sequence[tuple[int, ...]]


def _dot(a: Sequence[float], b: Sequence[float]) -> float:
    return float(sum(map(operator.mul, a, b)))


def _axpy(y: array[float], a: float, x: Sequence[float]) -> None:
    """``y += a x`` in place."""
    for i, xi in enumerate(x):
        y[i] += a * xi


class Normalised:
    """``D^-1/2 A D^-1/2`` of an undirected graph given by its adjacency lists."""

    def __init__(self, adjacency: Adjacency) -> None:
        self.adjacency = adjacency
        self.scale = array("d", (1 / math.sqrt(len(nbrs)) for nbrs in adjacency))
        top = array("d", (math.sqrt(len(nbrs)) for nbrs in adjacency))
        norm = math.sqrt(_dot(top, top))
        self.top = array("d", (t / norm for t in top))

    def times(self, x: Sequence[float]) -> array[float]:
        """``M x`` with the top eigenvector's part removed."""
        scaled = [xi * si for xi, si in zip(x, self.scale, strict=True)]
        y = array(
            "d",
            (
                si * sum([scaled[j] for j in nbrs])
                for si, nbrs in zip(self.scale, self.adjacency, strict=True)
            ),
        )
        _axpy(y, -_dot(self.top, y), self.top)
        return y


#: a string: ``array`` takes no subscript at run time before Python 3.12
Tridiagonal: TypeAlias = "tuple[list[float], list[float], list[array[float]]]"


def lanczos(matrix: Normalised, steps: int, seed: int = 1) -> Tridiagonal:
    """``steps`` Lanczos steps from a seeded random start: the tridiagonal's diagonal, its
    off-diagonal and the basis (kept for the Ritz vector; ``steps`` vectors of ``n``)."""
    rng = random.Random(seed)
    v = array("d", (rng.uniform(-1, 1) for _ in matrix.adjacency))
    _axpy(v, -_dot(matrix.top, v), matrix.top)
    norm = math.sqrt(_dot(v, v))
    v = array("d", (x / norm for x in v))
    alphas: list[float] = []
    betas: list[float] = []
    basis = [v]
    previous: array[float] | None = None
    for _ in range(steps):
        w = matrix.times(v)
        alpha = _dot(w, v)
        _axpy(w, -alpha, v)
        if previous is not None:
            _axpy(w, -betas[-1], previous)
        alphas.append(alpha)
        beta = math.sqrt(_dot(w, w))
        if beta < 1e-12 or len(alphas) == steps:
            break
        betas.append(beta)
        previous, v = v, array("d", (x / beta for x in w))
        basis.append(v)
    return alphas, betas, basis


def _below(alphas: Sequence[float], betas: Sequence[float], x: float) -> int:
    """Sturm count: eigenvalues of the tridiagonal below ``x``."""
    count, d = 0, 1.0
    for k, a in enumerate(alphas):
        off = betas[k - 1] ** 2 if k else 0.0
        d = a - x - (off / d if d else off / 1e-300)
        count += d < 0
    return count


def largest(alphas: Sequence[float], betas: Sequence[float]) -> float:
    """The tridiagonal's largest eigenvalue, by bisection to 1e-12."""
    radius = max(abs(a) + 2 * max(betas, default=0.0) for a in alphas)
    lo, hi = -radius, radius
    while hi - lo > 1e-12:
        mid = (lo + hi) / 2
        if _below(alphas, betas, mid) == len(alphas):
            hi = mid
        else:
            lo = mid
    return (lo + hi) / 2


def _solve(
    alphas: Sequence[float], betas: Sequence[float], shift: float, rhs: list[float]
) -> list[float]:
    """``(T - shift) y = rhs`` by the Thomas algorithm (``T`` tridiagonal, symmetric)."""
    m = len(alphas)
    diag = [a - shift for a in alphas]
    upper, right = [0.0] * m, [0.0] * m
    for k in range(m):
        lower = betas[k - 1] if k else 0.0
        pivot = diag[k] - lower * (upper[k - 1] if k else 0.0)
        pivot = pivot if abs(pivot) > 1e-300 else 1e-300
        upper[k] = (betas[k] if k < m - 1 else 0.0) / pivot
        right[k] = (rhs[k] - lower * (right[k - 1] if k else 0.0)) / pivot
    y = [0.0] * m
    for k in reversed(range(m)):
        y[k] = right[k] - (upper[k] * y[k + 1] if k < m - 1 else 0.0)
    return y


def ritz_vector(
    alphas: Sequence[float], betas: Sequence[float], basis: Sequence[array[float]], value: float
) -> list[float]:
    """The basis combination for the Ritz value ``value`` (inverse iteration on ``T``)."""
    y = [1.0] * len(alphas)
    for _ in range(3):
        y = _solve(alphas, betas, value + 1e-10, y)
        norm = math.sqrt(math.fsum(c * c for c in y))
        y = [c / norm for c in y]
    vector = [0.0] * len(basis[0])
    for c, v in zip(y, basis, strict=False):
        for i, vi in enumerate(v):
            vector[i] += c * vi
    return vector


#: uids as Kubernetes writes them; any bytes key the graph alike
KEYS = (
    b"5f1c3a2e-7b9d-4e6f-a1b2-c3d4e5f60718",
    b"0b0c7e3c-1d2e-4f5a-8b9c-0d1e2f3a4b5c",
    b"e2a9d4c1-6f3b-4a8e-9c7d-1b2a3c4d5e6f",
)


def _sweep(adjacency: Adjacency, order: Sequence[int]) -> tuple[float, int, int, int]:
    """Add pods in ``order`` one at a time: the least conductance of a prefix (cut over the
    smaller side's volume), that prefix's size and cut, and the cut when half are in."""
    volume = sum(len(nbrs) for nbrs in adjacency)
    inside = bytearray(len(adjacency))
    cut = vol = 0
    best = (math.inf, 0, 0)
    half_cut = 0
    for size, i in enumerate(order[:-1], start=1):
        inside[i] = 1
        internal = sum(inside[j] for j in adjacency[i])
        cut += len(adjacency[i]) - 2 * internal
        vol += len(adjacency[i])
        conductance = cut / min(vol, volume - vol)
        if conductance < best[0]:
            best = (conductance, size, cut)
        if size == len(adjacency) // 2:
            half_cut = cut
    return best[0], best[1], best[2], half_cut


def _arc_cut(adjacency: Adjacency) -> int:
    """Edges across the split of the ring into its two halves ``[0, n/2)`` and the rest."""
    half = len(adjacency) // 2
    return sum(1 for i in range(half) for j in adjacency[i] if j >= half)


def _row(n: int, key: bytes, degree: int, steps: int) -> dict[str, float]:
    graph = ReachGraph(n, key, degree)
    started = time.process_time()
    adjacency = [graph.neighbours(i) for i in range(n)]
    per_pod = (time.process_time() - started) / n
    matrix = Normalised(adjacency)
    alphas, betas, basis = lanczos(matrix, steps)
    half_way = largest(alphas[: steps // 2], betas[: steps // 2 - 1])
    second = largest(alphas, betas)
    fiedler = ritz_vector(alphas, betas, basis, second)
    order = sorted(range(n), key=lambda i: fiedler[i] * matrix.scale[i])
    conductance, size, cut, half_cut = _sweep(adjacency, order)
    mean_degree = sum(map(len, adjacency)) / n
    return {
        "n": n,
        "degree": degree,
        "mean degree": mean_degree,
        "pairs covered": mean_degree / (n - 1),
        "λ₂ (half the steps)": half_way,
        "λ₂": second,
        "2 sqrt(K-1) / K": 2 * math.sqrt(mean_degree - 1) / mean_degree,
        "Cheeger: every cut's conductance ≥": (1 - second) / 2,
        "sweep: least conductance found": conductance,
        "sweep: its side": size,
        "sweep: its cut / side": cut / size,
        "sweep: bisection cut / (n/2)": half_cut / (n // 2),
        "ring halves: cut / (n/2)": _arc_cut(adjacency) / (n // 2),
        "neighbours() per pod, µs": per_pod * 1e6,
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,100000")
    parser.add_argument("--keys", type=int, default=len(KEYS), choices=range(1, len(KEYS) + 1))
    parser.add_argument("--degree", type=int, help="instead of default_degree(n)")
    parser.add_argument("--steps", type=int, default=60, help="Lanczos steps")
    args = parser.parse_args(argv)
    for n in map(int, args.sizes.split(",")):
        for key in KEYS[: args.keys]:
            row = _row(n, key, args.degree or default_degree(n), args.steps)
            print(" | ".join(f"{name}: {value:.4g}" for name, value in row.items()), flush=True)


if __name__ == "__main__":
    main()
