"""An exit barrier led by one pod (``run --exit-barrier --exit-led-by I``): when the leader's
workload ends, every other pod's workload is stopped, and the pods leave with the leader's code.

MPI over an Indexed Job: index 0 runs ``mpirun``, the others run ``sshd -D``, which never ends
by itself, so a plain exit barrier would wait for ever. Pure: which hello says the leader's
workload has ended (:func:`leader_ended`), and a follower's stop as a transition table
(:class:`Follower`): SIGTERM at once, SIGKILL after the grace period, then the code to exit with.
The shell (``agent.commands.follow``) feeds it hellos, the time and the workload's end, and
sends the signals it returns.

Who may stop a workload: only the leader, as this pod's start barrier reached it. Its exit
barrier dials every pod with a hello naming barrier ``exit`` and its workload's code; a pod
whose own exit barrier has not begun gets it on its start barrier, which passes it here. It
counts only from the address the start barrier reached the leader at (an address DNS gave for
the leader's name: a TCP contact cannot forge its source), from the process reached there (its
instance), and with a token, only once its proof checked (``agent.io.channel``); or, when the
leader was replaced since, from a newer process of it at an address DNS lists for its name now
(:func:`successor_ended`). Either counts only once a lookup of the leader's name made after it
came lists the address it came from (:func:`end_counts`): pod addresses are reused and an
instance id is anyone's to ask for, so a lost leader's end can be replayed from its old address
by whoever holds it next. Anything else, whatever it claims, stops nothing.
"""

from __future__ import annotations

import enum
import math

from agent.protocol.handshake import Match, compare
from agent.protocol.instance import newer
from agent.protocol.wire import EXIT_BARRIER, Identity
from agent.values import value

__all__ = [
    "Follower",
    "LeaderSeen",
    "Stop",
    "StopSignal",
    "claims_end",
    "end_counts",
    "leader_ended",
    "successor_claims_end",
    "successor_ended",
]


@value
class LeaderSeen:
    """The leader as this pod's start barrier reached it: at ``address``, process ``instance``
    ("" when the probe could not tell processes apart)."""

    index: int
    address: str
    instance: str


def leader_ended(
    me: Identity, leader: LeaderSeen | None, address: str, hello: Identity
) -> int | None:
    """The code the leader's workload ended with, when ``hello`` (which passed its handshake,
    from ``address``) is the leader's exit barrier's; else None. ``me``: this pod's start
    barrier's identity; ``leader``: None until that barrier reached the leader."""
    if leader is None or address != leader.address:
        return None
    if leader.instance not in ("", hello.instance):
        return None  # another process at the leader's address: a restarted leader is not it
    return _said_end(me, leader, hello)


def successor_claims_end(me: Identity, leader: LeaderSeen | None, hello: Identity) -> bool:
    """Whether ``hello`` says the workload of a newer process of the leader ended: the leader
    replaced after this pod's start barrier reached it (its pod deleted, its node lost) and its
    successor's command has run and ended. Where it comes from is DNS's to say
    (:func:`successor_ended`): worth one lookup of the leader's name."""
    if leader is None or not leader.instance or not newer(hello.instance, leader.instance):
        return False
    return _said_end(me, leader, hello) is not None


def successor_ended(
    me: Identity, leader: LeaderSeen | None, address: str, hello: Identity, listed: tuple[str, ...]
) -> int | None:
    """The code in ``hello`` when it is a newer process of the leader's (as above), from
    ``address``, which DNS now ``listed`` for the leader's name: the same warrant the start
    barrier reached the leader by; else None."""
    if address not in listed or not successor_claims_end(me, leader, hello):
        return None
    return hello.exit_code


def claims_end(me: Identity, leader: LeaderSeen | None, address: str, hello: Identity) -> bool:
    """Whether ``hello``, from ``address``, says the leader's workload ended, from the leader as
    this pod's start barrier reached it or from a successor of it: worth one lookup of the
    leader's name, after which :func:`end_counts` decides."""
    if leader_ended(me, leader, address, hello) is not None:
        return True
    return successor_claims_end(me, leader, hello)


def end_counts(
    me: Identity, leader: LeaderSeen | None, address: str, hello: Identity, listed: tuple[str, ...]
) -> int | None:
    """The code ``hello`` (from ``address``) says the leader's workload ended with, when a
    lookup of the leader's name made since it came ``listed`` that address: DNS ties it to the
    leader's index now. The leader as reached, lost since, no longer has its address listed
    (the name gone or moved to a successor), so its end replayed from there stops nothing."""
    if address not in listed:
        return None
    code = leader_ended(me, leader, address, hello)
    return code if code is not None else successor_ended(me, leader, address, hello, listed)


def _said_end(me: Identity, leader: LeaderSeen, hello: Identity) -> int | None:
    """The exit code in ``hello`` when it is the leader's index's exit barrier's, of this Job
    and run, agreeing on the peer count and port; else None."""
    if hello.barrier != EXIT_BARRIER or hello.exit_code is None or hello.index != leader.index:
        return None
    same_barrier = compare(me, _as_start(hello, me), expected_index=leader.index)[0]
    return hello.exit_code if same_barrier is Match.SAME else None


def _as_start(hello: Identity, me: Identity) -> Identity:
    """``hello`` as if said in ``me``'s barrier: to compare job, run, peer count and port."""
    return Identity(hello.job, hello.uid, hello.index, hello.peers, hello.port, barrier=me.barrier)


class StopSignal(enum.Enum):
    TERM = "SIGTERM"
    KILL = "SIGKILL"


class Stop(enum.Enum):
    """Where a follower's workload is."""

    RUNNING = "running: the leader's workload has not ended"
    TERMINATING = "sent SIGTERM, waiting up to the grace period"
    KILLED = "sent SIGKILL"
    ENDED = "ended"


class _Event(enum.Enum):
    LEADER_ENDED = "the leader's workload ended"
    GRACE_OVER = "the grace period is over"
    WORKLOAD_ENDED = "the workload ended"


#: (where, what happened) -> where next; a pair not listed changes nothing
_MOVES: dict[tuple[Stop, _Event], Stop] = {
    (Stop.RUNNING, _Event.LEADER_ENDED): Stop.TERMINATING,
    (Stop.TERMINATING, _Event.GRACE_OVER): Stop.KILLED,
    (Stop.RUNNING, _Event.WORKLOAD_ENDED): Stop.ENDED,
    (Stop.TERMINATING, _Event.WORKLOAD_ENDED): Stop.ENDED,
    (Stop.KILLED, _Event.WORKLOAD_ENDED): Stop.ENDED,
}

#: the signal sent on entering a state
_SENT = {Stop.TERMINATING: StopSignal.TERM, Stop.KILLED: StopSignal.KILL}


class Follower:
    """A workload that the leader's end stops: :meth:`leader_ended` and :meth:`poll` return
    the signals to send; :meth:`exit_code` is the pod's code once the workload ended."""

    def __init__(self, grace: float) -> None:
        self.grace = grace
        self.state = Stop.RUNNING
        #: the leader's workload's code, once it said it ended while this one ran
        self.leader_code: int | None = None
        self._own_code: int | None = None
        self._kill_at = math.inf

    def _move(self, event: _Event) -> list[StopSignal]:
        after = _MOVES.get((self.state, event))
        if after is None:
            return []
        self.state = after
        sent = _SENT.get(after)
        return [] if sent is None else [sent]

    def leader_ended(self, code: int, now: float) -> list[StopSignal]:
        """The leader's workload ended with ``code``: stop this one, if it still runs."""
        signals = self._move(_Event.LEADER_ENDED)
        if signals:
            self.leader_code, self._kill_at = code, now + self.grace
        return signals

    def next_wakeup(self) -> float:
        """When :meth:`poll` has something to do (inf: only an event can change anything)."""
        return self._kill_at if self.state is Stop.TERMINATING else math.inf

    def poll(self, now: float) -> list[StopSignal]:
        if self.state is Stop.TERMINATING and now >= self._kill_at:
            return self._move(_Event.GRACE_OVER)
        return []

    def workload_ended(self, code: int) -> None:
        self._own_code = code
        self._move(_Event.WORKLOAD_ENDED)

    @property
    def stopped(self) -> bool:
        """Whether the leader's end stopped the workload (it was running then)."""
        return self.leader_code is not None

    def exit_code(self) -> int:
        """The pod's code: the leader's when its end stopped this workload (what the workload
        does on SIGTERM is not this pod's verdict), else the workload's own."""
        assert self.state is Stop.ENDED and self._own_code is not None
        return self.leader_code if self.leader_code is not None else self._own_code
