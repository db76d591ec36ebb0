"""Which answer counts: a reply's identity judged, a failed handshake's meaning, one attempt of a
peer by name over the addresses its name resolves to, and which peer an answer counts for.

Pure, and called by the shell (``agent.io.channel``, ``agent.io.probes``, ``agent.io.contacts``,
``agent.io.sessions``) and by the in-memory cluster of the tests alike, so the simulator runs
the decisions a pod runs instead of copies of them.
"""

from __future__ import annotations

from collections.abc import Sequence

from agent.core.causes import Cause, Failure
from agent.core.inputs import (
    Attempted,
    DialFailed,
    Disagreeing,
    ProbeResult,
    Reached,
    Resolution,
    Unreached,
)
from agent.core.reach import Reach
from agent.core.window import CONGESTION
from agent.protocol.handshake import Match, compare
from agent.protocol.instance import newer
from agent.protocol.wire import Hello, Identity

__all__ = [
    "NameAttempt",
    "at_the_address",
    "blind",
    "counted_by_name",
    "dial_failed",
    "failed_handshake",
    "hello_failed",
    "identity_failure",
    "peer_at_address",
    "replied",
]

_CAUSES = {Match.STRANGER: Cause.STRANGER, Match.DISAGREES: Cause.DISAGREES}
#: failures that say the address is the pod's (it refuses: its agent is not up; or it is too
#: busy to answer in time), so its next attempt reuses it without DNS (``agent.core.refused``)
_AT_THE_ADDRESS = CONGESTION | {Cause.CONNECT_REFUSED}


def at_the_address(cause: Cause) -> bool:
    """Whether a probe or dial that failed so leaves the address as good as DNS's next answer:
    it refused (the agent is not up) or timed out (the pod or the network is too busy). A
    connect or hello that timed out at every address asked DNS again at each retry, one
    query a name every few seconds while the peer was busy: 59 a name over 200 s of timeouts
    (``tests/pure/test_busy_peers_names.py``)."""
    return cause in _AT_THE_ADDRESS


def identity_failure(
    mine: Identity, theirs: Identity, *, expected_index: int | None
) -> Failure | None:
    """Why the pod that answered as ``theirs`` is not one to count (another job or run of it,
    another index than ``expected_index``, a pod of this job that disagrees), or None."""
    match, reason = compare(mine, theirs, expected_index=expected_index)
    if match is Match.SAME:
        return None
    if match is Match.STRANGER and _not_begun(mine, theirs, expected_index):
        return Failure(reason, Cause.NOT_BEGUN)
    return Failure(reason, _CAUSES[match])


def _not_begun(mine: Identity, theirs: Identity, expected_index: int | None) -> bool:
    """The same pod of this run, answering from another barrier (its start barrier answers
    for one it has not begun): not a stranger at a stale address, so a seeded address that
    answers so is still the pod's (``agent.core.seeded``)."""
    index = theirs.index == expected_index or expected_index is None
    return theirs.job == mine.job and theirs.uid == mine.uid and index


def blind(failure: Failure | None) -> Reached | Unreached:
    """What a probe that says no hello (``tcp:PORT``, ``icmp``, ``dns``) comes to: the address
    answered (no index, no instance, no released flag: nothing says which pod or process it
    is), or ``failure``, why it did not."""
    return Reached() if failure is None else Unreached(failure)


def failed_handshake(failure: Failure) -> Unreached | Disagreeing:
    """What a probe whose handshake failed comes to: a pod of this job that disagrees aborts
    everyone; any other failure (a stranger, a refusal, a wrong token) only leaves it unreached."""
    if failure.cause is Cause.DISAGREES:
        return Disagreeing(failure.reason)
    return Unreached(failure)


def hello_failed(problem: object) -> Unreached:
    """What a probe whose hello broke comes to (late, malformed, closed: ``problem``, which
    both drivers' connections word alike)."""
    return Unreached(Failure(f"hello failed: {problem}", Cause.HELLO_FAILED))


def replied(reply: Hello) -> Reached:
    """What a probe whose hello the pod answered comes to: which pod and process answered, and
    whether its barrier was released."""
    return Reached(reply.identity.index, reply.identity.instance, reply.released)


class NameAttempt:
    """One attempt of peer ``index`` by name: its addresses probed in DNS order until one answers
    as the pod, and with ``instance`` as that process of it (this pod's own name, which another
    instance of its index, an old pod still running, may share for a while). The first address
    that reaches it or disagrees settles the attempt, only that address counting (another may
    be a stale record); when none does, the failures are joined, the first one's cause standing
    for them. This pod's own name is probed at every address: a newer instance of its index at
    any of them means this pod was replaced (``Cause.REPLACED``), whoever else answers."""

    def __init__(self, index: int, instance: str, resolution: Resolution) -> None:
        self.index, self.instance = index, instance
        self._resolution = resolution
        self._late = resolution.late  # the answer came late: the pace slows, the name is not held
        self._failures: list[tuple[str, Failure]] = []
        self._settled: Attempted | None = None
        self._replaced: Failure | None = None  # a newer instance of this pod's own index

    def probed(self, address: str, result: ProbeResult) -> bool:
        """The probe of ``address`` (one of the resolution's, in order) landed; True when it
        settles the attempt, so the rest need no probe."""
        if isinstance(result, Reached) and self.instance and result.instance != self.instance:
            result = Unreached(self._other_instance(address, result.instance))
        if isinstance(result, Unreached):
            self._failures.append((address, result.failure))
            return False
        if self._settled is None:
            self._settled = Attempted(self.index, result, address, (address,), late=self._late)
        # this pod's own name: the next address may give a newer instance of it
        return not (self.instance and isinstance(result, Reached))

    def _other_instance(self, address: str, instance: str) -> Failure:
        if not newer(instance, self.instance):
            return Failure(f"another instance of pod {self.index} answers", Cause.OTHER_INSTANCE)
        why = f"replaced: a newer instance of pod {self.index} answers at {address}"
        self._replaced = self._replaced or Failure(why, Cause.REPLACED)
        return self._replaced

    def outcome(self) -> Attempted:
        """What the attempt came to, once it is settled or every address is probed."""
        if self._replaced is not None:
            return Attempted(self.index, Unreached(self._replaced), late=self._late)
        if self._settled is not None:
            return self._settled
        if self._resolution.failure is not None:
            return Attempted(self.index, Unreached(self._resolution.failure), late=self._late)
        if not self._failures:
            why = Failure("no address record", Cause.NO_ADDRESS)
            return Attempted(self.index, Unreached(why), late=self._late)
        # each failure names its address: the timeout's line for the peer then says where
        reasons = [f"{a}: {f.reason}" for a, f in self._failures]
        first = self._failures[0][1].cause
        answered = all(at_the_address(f.cause) for _, f in self._failures)
        refused_at = self._resolution.addresses if answered else ()
        failure = Failure("; ".join(reasons), first)
        return Attempted(self.index, Unreached(failure), refused_at=refused_at, late=self._late)


def dial_failed(
    resolution: Resolution,
    problems: list[str],
    causes: Sequence[Cause | None] = (),
    handshakes: Sequence[Failure] = (),
) -> DialFailed:
    """A member's dial that opened no session: what DNS said, then each address's problem;
    ``causes``: why each address tried failed (None: what answered sent no hello), its
    addresses reused without DNS when every one says the pod is there (``at_the_address``:
    it refused, or was too busy), as an attempt's are; ``handshakes``: why each handshake that
    failed did. A coordinator of this job that disagrees on it (as a probe
    that does, ``failed_handshake``) aborts the member: it will never count the member, and
    once it has aborted and gone the member would wait for the timeout."""
    failure = [resolution.failure.reason] if resolution.failure is not None else []
    why = "; ".join(failure + problems) or "no address"
    server_failed = resolution.failure is not None and resolution.failure.cause is Cause.DNS_FAILED
    disagrees = next((f.reason for f in handshakes if f.cause is Cause.DISAGREES), "")
    # every address answered as the coordinator, in a barrier it has not begun yet
    not_begun = bool(handshakes) and len(handshakes) == len(resolution.addresses)
    not_begun = not_begun and all(f.cause is Cause.NOT_BEGUN for f in handshakes)
    there = bool(causes) and all(c is not None and at_the_address(c) for c in causes)
    refused_at = resolution.addresses if there else ()
    return DialFailed(why, refused_at, server_failed, disagrees, not_begun)


def counted_by_name(reach: Reach, index: int, result: ProbeResult) -> ProbeResult:
    """An attempt's answer as this pod counts it: an older instance of peer ``index`` than one
    heard of (a replaced pod still answering at a stale address) is not the peer."""
    if isinstance(result, Reached) and reach.stale(index, result.instance):
        why = f"an older instance of pod {index} answers"
        return Unreached(Failure(why, Cause.OTHER_INSTANCE))
    return result


def peer_at_address(me: Identity, reach: Reach, result: Reached) -> int | Failure:
    """The peer an answer at one of the Service's addresses counts for, or why it counts for
    none: not an older instance of it, nor another instance of this pod's own index (an old pod
    still running)."""
    index = result.index
    if (
        index is not None
        and 0 <= index < me.peers
        and not (index == me.index and result.instance != me.instance)
        and not reach.stale(index, result.instance)
    ):
        return index
    return Failure(f"an older instance of pod {index} answers", Cause.OTHER_INSTANCE)
