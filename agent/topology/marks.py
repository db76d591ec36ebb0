"""What marks a pod as one controller's, read from its environment and hostname alone: what
``--topology auto`` chooses by (``agent.topology.derive``). Kept apart from each controller's
derivation, which is imported for that controller's pods only: an Indexed Job pod's start imports
none of the others (a module cost every start a million instructions or more).

Pure.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = ["TRAINING_OPERATOR_HOST", "TRAINING_OPERATOR_TYPES", "signature", "volcano_hosts"]

#: the Training Operator's replica types, and the hostname of its pods, ``<job>-<type>-<i>``
#: (compiled at its first use: ``re`` caches it)
TRAINING_OPERATOR_TYPES = "master|worker|chief|ps|evaluator"
TRAINING_OPERATOR_HOST = (
    rf"^(?P<job>[a-z0-9]([-a-z0-9]*[a-z0-9])?)-(?P<type>{TRAINING_OPERATOR_TYPES})-(?P<i>\d+)$"
)


def volcano_hosts(environ: Mapping[str, str], hostname: str) -> tuple[str, str] | None:
    """Volcano's svc plugin puts every task's hosts in ``VC_<TASK>_HOSTS`` (comma-joined
    ``<host>.<job>``): the variable and value of the list that names this pod, if one does."""
    for var, hosts in sorted(environ.items()):
        listed = (h.strip().split(".")[0] for h in hosts.split(","))
        if hostname and var.startswith("VC_") and var.endswith("_HOSTS") and hostname in listed:
            return var, hosts
    return None


def signature(environ: Mapping[str, str], hostname: str) -> str | None:
    """The Training Operator's variable that marks this pod, when its hostname is
    ``<job>-<type>-<i>`` (looked at only when a variable is there)."""
    var = _marking_variable(environ)
    return var if var is not None and re.match(TRAINING_OPERATOR_HOST, hostname) else None


def _marking_variable(environ: Mapping[str, str]) -> str | None:
    for var in ("TF_CONFIG", "PET_NNODES", "PADDLE_NNODES"):
        if environ.get(var):
            return var
    if environ.get("NUM_PROCESSES") and environ.get("COORDINATOR_ADDRESS"):
        return "NUM_PROCESSES"
    if environ.get("WORLD_SIZE") and environ.get("MASTER_ADDR", "").endswith("-master-0"):
        return "MASTER_ADDR"
    return None
