"""End-to-end scenarios in the cluster in a box (root: CI runs them; they never skip)."""

from tests.harness.fixtures import cluster, make_cluster

__all__ = ["cluster", "make_cluster"]
