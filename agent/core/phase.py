"""Where an agent is in its wait: the named phases ``Agent.poll``, ``Agent.next_wakeup`` and the
exit rules switch on, and the moves between them (as h11 names its states).

A phase is computed from the state it summarises (``phase_of``), never stored beside it, so the
two cannot disagree; :data:`MOVES` is the table of the moves one event or poll may make, which
the in-memory cluster checks every agent against.

=============  ===========================================================  ==================
phase          what the agent does                                          the wait ends
=============  ===========================================================  ==================
DISCOVERING    attempts, DNS rounds, the member's dials, progress lines     at the timeout
REACHED        the same while the barrier decides; a coordinator looks      without a barrier
               around (``agent.core.lookaround``)                           at once, else at
                                                                            the timeout
RELEASED       nothing: a coordinator awaits its members' acks              every ack, or the
                                                                            ack linger
ABORTED        nothing: it keeps answering, so peers learn of the abort     the abort linger
FINISHED       a sidecar serves on: rounds that vouch for late contacts     (ended)
=============  ===========================================================  ==================
"""

from __future__ import annotations

import enum

__all__ = ["MOVES", "Phase", "phase_of"]


class Phase(enum.Enum):
    DISCOVERING = "reaching its peers"
    REACHED = "reached every peer, waiting for the barrier's verdict"
    RELEASED = "released, waiting for the members' acks"
    ABORTED = "aborted, answering a while so that peers learn of it"
    FINISHED = "the wait is over (a sidecar serves on)"


def phase_of(finished: bool, released: bool, aborted: bool, reached_all: bool) -> Phase:
    """The phase of an agent whose wait has ``finished`` or not, whose barrier has ``released``
    or ``aborted`` it (or neither yet), and which has ``reached_all`` its peers or not."""
    if finished:
        return Phase.FINISHED
    if aborted:
        return Phase.ABORTED
    if released:
        return Phase.RELEASED
    return Phase.REACHED if reached_all else Phase.DISCOVERING


#: (from, to): every move one event or one poll may make. Within one event an agent may pass
#: through a phase (the last peer reached, and a release heard of before accepted): such moves
#: are listed as they are seen from outside.
MOVES: frozenset[tuple[Phase, Phase]] = frozenset(
    {
        (Phase.DISCOVERING, Phase.REACHED),  # the last peer reached
        (Phase.REACHED, Phase.DISCOVERING),  # a peer restarted: its new instance is to be reached
        (Phase.DISCOVERING, Phase.ABORTED),  # a peer disagrees on the job
        (Phase.REACHED, Phase.ABORTED),
        (Phase.REACHED, Phase.RELEASED),  # the verdict
        (Phase.DISCOVERING, Phase.RELEASED),  # the last peer reached, a release heard accepted
        (Phase.RELEASED, Phase.FINISHED),  # every ack or the linger bound (a member: at once)
        (Phase.ABORTED, Phase.FINISHED),  # the abort linger
        (Phase.DISCOVERING, Phase.FINISHED),  # the timeout; a disagreement without a barrier
        (Phase.REACHED, Phase.FINISHED),  # no barrier; the timeout
    }
)
