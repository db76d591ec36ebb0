"""Seeded mutations of the shipped core's decisions, and the schedules that must catch each.

A mutant replaces one decision of the real core (a method or function of ``agent.core``) for
the length of one test, through ``pytest.MonkeyPatch``: the replacement wraps or overrides that
one decision and calls the original for the rest, so what runs is the shipped core with one
decision wrong. Each names the schedules (tests/sim/killers.py: fixed schedules of the
in-memory cluster, bounded runs of the explorer) that must flag it, judged only by the checker
(tests/sim/safety.py, from the network's record) and the liveness rule of the property tests; a
mutant no schedule flags survives, and tests/sim/test_mutants.py fails. Every schedule passes on
the shipped core (the same test says so), so a kill is the mutation's doing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import pytest

from agent.config.model import Config
from agent.core import discovery, targets
from agent.core.admission import Admission, HeldSession
from agent.core.edgesums import EdgeSums
from agent.core.effects import Close, Effect, Released
from agent.core.graph import ReachGraph
from agent.core.group import GroupCoordinator
from agent.core.incoming import Incoming
from agent.core.inputs import Opened
from agent.core.outcome import ReleaseKind
from agent.core.reach import Reach, view_digest
from agent.core.roles import Action, Coordinator, Member
from agent.core.targets import Targets
from agent.protocol import instance as instance_ids
from agent.protocol.wire import START_BARRIER, Arrive, Message

__all__ = ["MUTANTS", "Mutant"]


@dataclass(frozen=True)
class Mutant:
    name: str
    why: str  # one line: what a user would suffer from it
    apply: Callable[[pytest.MonkeyPatch], None]
    killers: tuple[str, ...]  # the scenarios (tests/sim/killers.py) that must flag it


# --- the mutants ----------------------------------------------------------------------------------
def _skipped_edge(mp: pytest.MonkeyPatch) -> None:
    """Each pod leaves its highest neighbour out of its targets (never probes it) yet sums the
    edge as proven."""
    targets_of = targets.targets_of

    def mutant(
        config: Config, graph: ReachGraph | None = None, *, barrier: str = START_BARRIER
    ) -> Targets | None:
        found = targets_of(config, graph, barrier=barrier)
        if found is None or found.complete or not found.neighbours:
            return found
        skipped = found.neighbours[-1]
        kept = found.indices - {skipped} | {found.index, 0}
        return Targets(found.index, found.neighbours, frozenset(kept), found.complete, found.sweeps)

    mp.setattr(targets, "targets_of", mutant)
    mp.setattr(discovery, "targets_of", mutant)


def _sum_ignores_a_neighbour(mp: pytest.MonkeyPatch) -> None:
    """A pod's sum A leaves out the term of its lowest neighbour."""
    reached = EdgeSums.reached

    def mutant(self: EdgeSums, i: int, seen: Iterable[tuple[int, str]]) -> int:
        return reached(self, i, list(seen)[1:])

    mp.setattr(EdgeSums, "reached", mutant)


def _arrival_outlives_session(mp: pytest.MonkeyPatch) -> None:
    def _forget(self: Coordinator, conn: int) -> None:
        index = self._index_of.pop(conn, None)
        if index is not None and self._conn_of.get(index) == conn:
            del self._conn_of[index]  # and its arrival is kept: the mutation

    mp.setattr(Coordinator, "_forget", _forget)


def _group_releases_early(mp: pytest.MonkeyPatch) -> None:
    """A group coordinator releases its members once its own group is all there, without
    waiting for the root."""
    maybe_release = GroupCoordinator._maybe_release

    def mutant(self: GroupCoordinator, now: float) -> list[Action]:
        out = maybe_release(self, now)
        whole = len(self._matching) + (self.view is not None) == self.up.full
        if self.verdict is None and whole:
            out += self._decide(Released(ReleaseKind.BY_COORDINATOR), now)
        return out

    mp.setattr(GroupCoordinator, "_maybe_release", mutant)


def _group_keeps_lost_member(mp: pytest.MonkeyPatch) -> None:
    """A group coordinator forgets a lost member's session but keeps its arrival in the
    aggregate it sends the root."""
    forget = Coordinator._forget

    def mutant(self: Coordinator, conn: int) -> None:
        if not isinstance(self, GroupCoordinator):
            return forget(self, conn)
        index = self._index_of.pop(conn, None)
        if index is not None and self._conn_of.get(index) == conn:
            del self._conn_of[index], self._instance_of[index]  # its arrival stays: the mutation
        return None

    mp.setattr(Coordinator, "_forget", mutant)


def _view_unchecked(mp: pytest.MonkeyPatch) -> None:
    received = Coordinator.received

    def mutant(self: Coordinator, conn: int, message: Message, now: float) -> list[Action]:
        out = received(self, conn, message, now)
        index = self._index_of.get(conn)
        if isinstance(message, Arrive) and index is not None and self.verdict is None:
            self._matching.add(index)  # whatever view it names
            out += self._maybe_release(now)
        return out

    mp.setattr(Coordinator, "received", mutant)


def _release_one_short(mp: pytest.MonkeyPatch) -> None:
    maybe_release = Coordinator._maybe_release

    def mutant(self: Coordinator, now: float) -> list[Action]:
        short = len(self._matching) >= len(self.members) - 1
        if self.verdict is None and self.view is not None and short:
            return self._decide(Released(ReleaseKind.DECIDED), now)
        return maybe_release(self, now)

    mp.setattr(Coordinator, "_maybe_release", mutant)


def _older_instance_newer(mp: pytest.MonkeyPatch) -> None:
    def newer(a: str, b: str) -> bool:
        return instance_ids.order(a) < instance_ids.order(b)

    mp.setattr("agent.core.reach.newer", newer)


def _first_held_message_kept(mp: pytest.MonkeyPatch) -> None:
    absorb = HeldSession.absorb

    def mutant(self: HeldSession, message: Message) -> bool:
        if isinstance(message, Arrive) and self.arrived is not None:
            return True  # kept the first: the mutation
        return absorb(self, message)

    mp.setattr(HeldSession, "absorb", mutant)


def _admitted_session_evicted(mp: pytest.MonkeyPatch) -> None:
    hold = Incoming._hold

    def mutant(self: Incoming, event: Opened, now: float) -> list[Effect]:
        out = hold(self, event, now)
        side = self.barrier.side
        if isinstance(side, Coordinator):
            admitted = side._conn_of.get(event.hello.identity.index)
            out += [Close(admitted)] if admitted is not None else []
        return out

    mp.setattr(Incoming, "_hold", mutant)


def _release_before_reaching(mp: pytest.MonkeyPatch) -> None:
    accept = Member._maybe_accept

    def mutant(self: Member) -> list[Action]:
        if self.view is None and (self._released_view is not None or self._peer_says):
            return self._decide(Released(ReleaseKind.ALREADY))
        return accept(self)

    mp.setattr(Member, "_maybe_accept", mutant)


def _coordinator_takes_word(mp: pytest.MonkeyPatch) -> None:
    peer_released = Coordinator.peer_released

    def mutant(self: Coordinator, now: float) -> list[Action]:
        if self.verdict is None:
            self._acked = set(self.members)
            return self._decide(Released(ReleaseKind.ALREADY), now)
        return peer_released(self, now)

    mp.setattr(Coordinator, "peer_released", mutant)


def _restart_forgotten(mp: pytest.MonkeyPatch) -> None:
    note = Reach.note_instance

    def mutant(self: Reach, index: int, instance: str) -> bool:
        note(self, index, instance)
        return False  # never takes the pod for replaced

    mp.setattr(Reach, "note_instance", mutant)


def _unlisted_trusted(mp: pytest.MonkeyPatch) -> None:
    mp.setattr(Admission, "verified", lambda self, index, address: True)


def _leaves_before_acks(mp: pytest.MonkeyPatch) -> None:
    mp.setattr(Coordinator, "may_leave", lambda self, now: self.verdict is not None)


def _done_one_short(mp: pytest.MonkeyPatch) -> None:
    mp.setattr(Reach, "done", property(lambda self: self._left <= 1))


def _view_without_instances(mp: pytest.MonkeyPatch) -> None:
    mp.setattr(Reach, "view", lambda self: view_digest("" for _ in self.peers))


def _held_messages_dropped(mp: pytest.MonkeyPatch) -> None:
    mp.setattr(HeldSession, "replay", lambda self: [])


MUTANTS = [
    Mutant(
        "skipped-edge",
        "a pod never probes an assigned neighbour yet counts the edge: a broken pair passes",
        _skipped_edge,
        ("sparse-n12-icmp", "sparse-n12-tcp"),
    ),
    Mutant(
        "sum-ignores-a-neighbour",
        "an arrival's sum leaves out one neighbour: the sums never agree, nobody is released",
        _sum_ignores_a_neighbour,
        ("sparse-n12-tcp",),
    ),
    Mutant(
        "group-releases-early",
        "a group coordinator releases its group before the root decided: the other groups "
        "were not ready",
        _group_releases_early,
        ("sparse-n12-tcp",),
    ),
    Mutant(
        "group-keeps-lost-member",
        "a group coordinator keeps a crashed member in its aggregate: the others start without it",
        _group_keeps_lost_member,
        ("group-member-crash",),
    ),
    Mutant(
        "arrival-outlives-session",
        "a member that crashed after arriving is counted: the others start without it",
        _arrival_outlives_session,
        ("crash-counted-after-fin",),
    ),
    Mutant(
        "view-unchecked",
        "an arrival counts whatever instances it reached: pods pass that never reached a "
        "restarted peer",
        _view_unchecked,
        ("restart-while-arriving",),
    ),
    Mutant(
        "release-one-short",
        "the coordinator releases at N - 1 arrivals: the last pod was not ready",
        _release_one_short,
        ("explore-n2-wait", "slow-third-arrival"),
    ),
    Mutant(
        "older-instance-newer",
        "instance order inverted: a restarted pod is taken for its dead predecessor",
        _older_instance_newer,
        ("restart-while-arriving",),
    ),
    Mutant(
        "first-held-message-kept",
        "a held session keeps its first Arrive, not its latest: all pods time out",
        _first_held_message_kept,
        ("held-member-arrives-twice",),
    ),
    Mutant(
        "admitted-session-evicted",
        "a held (unproven) claim evicts the admitted session of the pod it claims",
        _admitted_session_evicted,
        ("outsider-claims-a-member",),
    ),
    Mutant(
        "release-before-reaching",
        "a member accepts a Release before it has reached every pod itself",
        _release_before_reaching,
        ("late-joiner-partitioned",),
    ),
    Mutant(
        "coordinator-takes-word",
        "a coordinator takes a peer's word that the barrier passed before reaching everyone",
        _coordinator_takes_word,
        ("late-coordinator-partitioned",),
    ),
    Mutant(
        "restart-forgotten",
        "a replaced pod's new instance is never reached anew: nobody releases",
        _restart_forgotten,
        ("restart-while-arriving",),
    ),
    Mutant(
        "unlisted-trusted",
        "a contact from an address DNS does not list is believed: an outsider aborts the Job",
        _unlisted_trusted,
        ("outsider-disagrees",),
    ),
    Mutant(
        "leaves-before-acks",
        "the coordinator leaves at its decision: a member whose Release was lost waits for ever",
        _leaves_before_acks,
        ("slow-third-arrival",),
    ),
    Mutant(
        "done-one-short",
        "a pod counts itself done with one peer unreached: the barrier passes without it",
        _done_one_short,
        ("nobody-reaches-pod-2",),
    ),
    Mutant(
        "view-without-instances",
        "views name indices, not instances: an arrival from before a restart still matches",
        _view_without_instances,
        ("explore-n2-restart-sidecar", "slow-third-arrival"),
    ),
    Mutant(
        "held-messages-dropped",
        "a held session is handed on without what its member said: its arrival is lost",
        _held_messages_dropped,
        ("held-member-arrives-twice",),
    ),
]
