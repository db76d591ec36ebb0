from tests.harness.fixtures import cluster, make_cluster

__all__ = ["cluster", "make_cluster"]
