"""The tree's fan-in, judged from the network's record (truth.py) alone: of which member
arrivals a group coordinator's aggregate was made.

A group coordinator ``g`` sent the root ``Arrive(⊕A, ⊕B, count)`` at some step; the root's
release names it. Counted below it are, for each other index of ``g``'s group, the instance
whose latest arrival (before that step) came on a session ``g`` had not yet seen end, one per
index, chosen so that ``⊕B`` is what those instances and ``g`` itself are owed: ``B`` names
its pod's instance (``agent.core.edgesums``), so this tells the counted instances apart when
``g`` held two live sessions of one index. Nothing here asks a core what it held.
"""

from __future__ import annotations

import itertools

from agent.core.edgesums import EdgeSums, from_hex
from agent.core.groups import Tree
from tests.sim.truth import Truth

__all__ = ["made_of"]


def made_of(
    truth: Truth, tree: Tree, leader: str, token: str, *, until: int, instances: bool
) -> dict[int, str] | None:
    """The instance counted for each index of ``leader``'s group (``leader`` itself
    included) in the aggregate ``token`` it sent, counted by the root at ``until``; None when
    no step it sent it at holds one live arrival an index that add up to it, or when one of
    those sessions ended at ``leader`` before ``until`` and it sent the root nothing since
    (a lost session uncounts its member: the group coordinator says so at once)."""
    process = truth.processes[leader]
    sent = [s for s, _ in truth.aggregates.get(leader, [])]
    for seq in [s for s, t in truth.aggregates.get(leader, []) if t == token]:
        candidates = _live_arrivals(truth, tree, leader, seq, until, sent)
        if candidates is None:
            continue
        own = _owed(truth, process.index, leader if instances else "")
        for choice in itertools.product(*candidates.values()):
            owed = own
            for _, arrival in choice:
                owed ^= from_hex(arrival[32:])
            if owed == from_hex(token[32:]):
                found = {process.index: leader}
                found.update(zip(candidates, (client for client, _ in choice), strict=True))
                return found
    return None


def _live_arrivals(
    truth: Truth, tree: Tree, leader: str, seq: int, until: int, sent: list[int]
) -> dict[int, list[tuple[str, str]]] | None:
    """For each member index: (instance, its latest arrival) on each session at ``leader``
    still live at ``seq`` and, if it ended before ``until``, followed by an aggregate sent
    (at a step in ``sent``) after it ended; None when an index has none."""
    index = truth.processes[leader].index
    found: dict[int, list[tuple[str, str]]] = {m: [] for m in tree.group(index) if m != index}
    for s in truth.by_server.get(leader, ()):
        member = truth.processes[s.client].index
        live = s.ended is None or s.ended > seq
        if s.ended is not None and s.ended < until:
            live = live and any(s.ended <= t < until for t in sent)
        arrived = [token for at, token in s.arrivals if at < seq]
        if s.server == leader and member in found and live and arrived:
            found[member].append((s.client, arrived[-1]))
    return None if any(not c for c in found.values()) else found


def _owed(truth: Truth, index: int, instance: str) -> int:
    """``B`` of ``instance`` of ``index``: what its neighbours must have seen of it."""
    assert truth.graph is not None and truth.key is not None
    return EdgeSums(truth.key).owed(index, truth.graph.neighbours(index), instance)
