"""Which peers this pod has reached, and when to try each of the others again.

Pure: the runner reports attempt results and the time; ``start_due`` says whom to try now. An
attempt is one resolve-and-probe of one peer, always re-resolving, so a replaced pod's new address
is found.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Iterable, Iterator

from agent.core.backoff import Backoff
from agent.core.causes import NOT_TRIED, TELLING_CAUSES, Cause, Failure
from agent.core.timing import DEFAULT_TIMING
from agent.protocol.instance import newer

__all__ = ["HEARD_OF", "PeerState", "PeerStates", "Reach", "newer", "view_digest"]

#: peers that are not targets whose newest instance a pod keeps (a coordinator hears of every
#: member): past it the one heard of first is forgotten first, which only loses the early
#: refusal of an older instance of that index (the barrier's own instance rule still refuses it)
HEARD_OF = 1 << 17


def view_digest(instances: Iterable[str]) -> str:
    """The digest of a view: the instance reached of each index, in index order."""
    return _sha256_hex("\n".join(instances).encode())[:32]


def _sha256_hex(data: bytes) -> str:
    """hashlib's SHA-256, from CPython's own implementation where it has one (``_sha256`` to
    3.11, ``_sha2`` since): importing hashlib loads OpenSSL's libcrypto, 2-4 ms of every pod's
    CPU now that ssl no longer loads it first (``agent.commands.lazyssl``). Imported once a pod
    has reached everyone: not on the way to its first query."""
    import importlib

    for name in ("_sha256", "_sha2"):
        try:
            return str(importlib.import_module(name).sha256(data).hexdigest())
        except ImportError:
            continue
    import hashlib  # a Python built without them

    return hashlib.sha256(data).hexdigest()


class PeerState:
    """One peer's progress: slots, not a dataclass (one per peer, 10,000 at a coordinator, and
    a dataclass would compile its methods at every start)."""

    __slots__ = (
        "address",
        "failure",
        "failures",
        "in_flight",
        "index",
        "instance",
        "newest",
        "next_at",
        "nudged",
        "reached",
        "reached_at",
        "telling",
    )

    def __init__(self, index: int, next_at: float) -> None:
        self.index = index
        self.reached = False
        self.in_flight = False
        self.failures = 0
        self.next_at = next_at
        #: why it is not reached (while it is not: once it is, the last failure before)
        self.failure: Failure = NOT_TRIED
        #: set when a push arrives mid-attempt: retry at once instead of backing off
        self.nudged = False
        self.address = ""
        self.instance = ""
        #: the newest instance heard of: an older one answering later is a stale pod, not the
        #: peer
        self.newest = ""
        self.reached_at: float | None = None
        #: the last telling failure (another token, a disagreement) while the peer is missing:
        #: what a timeout still reports once the peer has left and only refuses connections
        self.telling: Failure | None = None


class PeerStates:
    """Each target's :class:`PeerState`, made at the start; of a peer that is not a target only
    the newest instance heard of, for at most ``heard_of`` of them (a coordinator hears of every
    member), the one heard of first forgotten first. Per-pod state is O(targets + sessions),
    never O(peers): a pod of a sparse graph of 100,000 keeps about 25 states, not 100,000.

    Indexing a peer that is not a target gives a fresh state each time (never reached, its
    newest instance filled in): read it, do not change it (``Reach`` changes what it keeps).
    Iterating gives the targets' states in index order."""

    __slots__ = ("_heard", "_heard_of", "_states")

    def __init__(self, targets: tuple[int, ...], now: float, heard_of: int = HEARD_OF) -> None:
        self._states = {index: PeerState(index, next_at=now) for index in targets}
        self._heard: dict[int, str] = {}  # not a target: index -> newest instance, oldest first
        self._heard_of = heard_of

    def __getitem__(self, index: int) -> PeerState:
        state = self._states.get(index)
        if state is None:
            state = PeerState(index, next_at=0.0)
            state.newest = self._heard.get(index, "")
        return state

    def __iter__(self) -> Iterator[PeerState]:
        return iter(self._states.values())

    def get(self, index: int) -> PeerState | None:
        """A target's state (None for another peer)."""
        return self._states.get(index)

    def heard(self, index: int, instance: str) -> None:
        """``instance`` is the newest heard of peer ``index``, which is not a target."""
        self._heard.pop(index, None)
        self._heard[index] = instance
        if len(self._heard) > self._heard_of:
            del self._heard[next(iter(self._heard))]


class Reach:
    """Per-peer retry state for ``peers`` targets, at most ``max_in_flight`` attempts at a time."""

    def __init__(
        self,
        peers: int,
        *,
        now: float,
        rand: Callable[[], float],
        backoff: Backoff = DEFAULT_TIMING.backoff,
        max_in_flight: int = 256,
        scheduled: Iterable[int] | None = None,
        targets: Iterable[int] | None = None,
        refused: Backoff | None = None,
    ) -> None:
        """``scheduled``: the peers this schedules attempts for (default all targets); the
        others are found another way (bulk discovery) and only reported here, unless
        ``schedule``d later. ``targets``: the peers this pod must reach (default all: a sparse
        graph gives it a few, ``agent.core.targets``); another is never scheduled nor counted.
        ``refused``: the retries of an attempt that nobody listened to (default ``backoff``):
        a longer cap where the peer's own hello retries it once its agent is up."""
        self._targets = tuple(sorted(set(range(peers) if targets is None else targets)))
        self._n = peers
        self.peers = PeerStates(self._targets, now)
        self._is_target = frozenset(self._targets)
        self._backoff, self._refused = backoff, refused or backoff
        self._max_in_flight = max_in_flight
        self._rand = rand
        self._in_flight = 0
        self._left = len(self._targets)
        self._scheduled: set[int] = set()
        # (next_at, index) of the scheduled peers that wait on the clock; an entry whose peer
        # has moved on (reached, in flight, another time) is dropped when it comes up, so each
        # loop step costs O(log N), not a scan of 10,000 peers
        self._queue: list[tuple[float, int]] = []
        self.schedule(self._targets if scheduled is None else scheduled)

    @property
    def done(self) -> bool:
        return self._left == 0

    @property
    def size(self) -> int:
        """How many pods the Job has (not how many this pod targets)."""
        return self._n

    @property
    def max_in_flight(self) -> int:
        """The most attempts (and a Service's probes) out at once."""
        return self._max_in_flight

    @property
    def targets(self) -> tuple[int, ...]:
        """The peers this pod must reach, in index order."""
        return self._targets

    def is_target(self, index: int) -> bool:
        return index in self._is_target

    def unreached_target(self, index: int) -> bool:
        """A target not reached yet (another peer is never counted reached: no use trying)."""
        return index in self._is_target and not self.peers[index].reached

    def is_scheduled(self, index: int) -> bool:
        return index in self._scheduled

    def awaits_name(self, index: int) -> bool:
        """Peer ``index`` is attempted by name here and not reached yet."""
        return index in self._scheduled and not self.peers[index].reached

    def unscheduled_missing(self) -> int:
        """How many peers not reached are found another way (not ``schedule``d here)."""
        return self._left - sum(1 for i in self._scheduled if not self.peers[i].reached)

    def schedule(self, indices: Iterable[int]) -> None:
        """Attempt these peers from now on too (e.g. those a cut-short DNS answer left out);
        a peer that is not a target is never attempted."""
        for index in indices:
            if index not in self._scheduled and index in self._is_target:
                self._scheduled.add(index)
                self._wait(self.peers[index])

    def _wait(self, peer: PeerState) -> None:
        if peer.index in self._scheduled and not peer.reached and not peer.in_flight:
            heapq.heappush(self._queue, (peer.next_at, peer.index))

    def _next(self) -> PeerState | None:
        """The scheduled peer that is due first, stale queue entries dropped."""
        while self._queue:
            at, index = self._queue[0]
            peer = self.peers[index]
            if not peer.reached and not peer.in_flight and peer.next_at == at:
                return peer
            heapq.heappop(self._queue)
        return None

    def start_due(self, now: float, limit: int | None = None) -> list[int]:
        """The peers due now (at most ``limit``: what the DNS pace allows), put in flight:
        until ``succeeded``, ``failed`` or ``defer``red they are not due again."""
        chosen: list[int] = []
        most = self._max_in_flight if limit is None else min(self._max_in_flight, limit)
        while self._in_flight < self._max_in_flight and len(chosen) < most:
            peer = self._next()
            if peer is None or peer.next_at > now:
                break
            heapq.heappop(self._queue)
            peer.in_flight = True
            self._in_flight += 1
            chosen.append(peer.index)
        return chosen

    def _land(self, index: int) -> PeerState:
        peer = self.peers[index]
        if peer.in_flight:
            peer.in_flight = False
            self._in_flight -= 1
        return peer

    def stale(self, index: int, instance: str) -> bool:
        """``instance`` is older than one heard of for ``index``: a pod that was replaced (or a
        duplicate that stays behind) answering at an address DNS still lists."""
        newest = self.peers[index].newest
        return bool(instance and newest) and newer(newest, instance)

    def succeeded(
        self, index: int, address: str, now: float, instance: str = "", *, lands: bool = True
    ) -> None:
        """Peer ``index`` answered at ``address``: by its attempt, which ``lands``, or at an
        address of the Service (an attempt still out stays in flight until it lands: another
        started meanwhile would be two at once)."""
        if instance and not self.stale(index, instance):
            self._heard(index, instance)
        peer = self.peers.get(index)
        if peer is None:  # not a target: never counted
            return
        if lands:
            self._land(index)
        if not peer.reached:
            peer.reached, peer.address, peer.reached_at = True, address, now
            peer.instance, peer.telling = instance, None
            self._left -= 1

    def _heard(self, index: int, instance: str) -> None:
        peer = self.peers.get(index)
        if peer is None:
            self.peers.heard(index, instance)
        else:
            peer.newest = instance

    def note_instance(self, index: int, instance: str) -> bool:
        """A hello from ``instance`` of peer ``index``. True when the instance reached is older:
        the pod was replaced, and its new instance must be reached before it counts again. An
        older one never replaces a newer: two live instances of one index (an old pod on a
        partitioned node) would otherwise pull every pod back and forth between them."""
        peer = self.peers[index]
        if instance and (not peer.newest or newer(instance, peer.newest)):
            self._heard(index, instance)
        return peer.reached and bool(peer.instance) and newer(peer.newest, peer.instance)

    def newest_at(self, index: int) -> tuple[str, ...]:
        """Where peer ``index``'s newest instance heard of was reached, if it was."""
        peer = self.peers[index]
        return (peer.address,) if peer.reached and peer.instance == peer.newest else ()

    def fresh_at(self, index: int, now: float, within: float) -> tuple[str, ...]:
        """Where peer ``index`` was reached less than ``within`` seconds ago, if it was: its
        name's answer then is as good as one asked now (cluster DNS would serve it from its
        cache), so a dial of it reuses the address instead of asking the name again."""
        reached_at = self.peers[index].reached_at
        return self.newest_at(index) if reached_at is not None and now - reached_at < within else ()

    def recheck(self, index: int) -> bool:
        """Attempt reached peer ``index`` once more (DNS may give its name another address
        now): True when it is put in flight, until ``succeeded`` or ``failed`` lands it; its
        being reached changes only if the answer says it restarted."""
        peer = self.peers[index]
        if not peer.reached or peer.in_flight or self._in_flight >= self._max_in_flight:
            return False
        peer.in_flight = True
        self._in_flight += 1
        return True

    def forget(self, index: int, now: float, failure: Failure | None = None) -> None:
        """The instance reached is gone: reach the new one before counting the peer again."""
        peer = self.peers[index]
        if peer.reached:
            peer.reached, peer.failures, peer.next_at = False, 0, now
            restarted = Failure("restarted: reaching its new instance", Cause.RESTARTED)
            peer.failure = failure or restarted
            peer.instance = ""
            self._left += 1
            self._wait(peer)

    def failed(
        self, index: int, failure: Failure, now: float, not_before: float = -math.inf
    ) -> None:
        """The attempt failed; ``not_before``: the name is not to be asked again sooner (DNS
        failed to answer it: ``agent.core.dnspace``), however the peer is nudged."""
        if index not in self._is_target:
            return  # never attempted: nothing to back off
        peer = self._land(index)
        peer.failure = failure
        if failure.cause in TELLING_CAUSES:
            peer.telling = failure
        if peer.nudged:
            peer.nudged, peer.failures, peer.next_at = False, 0, now
        else:
            peer.failures += 1
            refused = failure.cause is Cause.CONNECT_REFUSED
            backoff = self._refused if refused else self._backoff
            peer.next_at = now + backoff.delay(peer.failures, self._rand())
        peer.next_at = max(peer.next_at, not_before)
        self._wait(peer)

    def defer(self, index: int, at: float) -> None:
        """The attempt just started may not go out yet (the DNS pace): due again at ``at``.
        A reached peer's re-check is simply dropped."""
        peer = self._land(index)
        if not peer.reached:
            peer.next_at = at
            self._wait(peer)

    def nudge(self, index: int, now: float) -> None:
        """Peer ``index`` showed signs of life (it contacted us): try it again now."""
        peer = self.peers.get(index)
        if peer is None or peer.reached:
            return
        if peer.in_flight:
            peer.nudged = True
        elif now < peer.next_at:
            peer.failures, peer.next_at = 0, now
            self._wait(peer)
        else:
            peer.failures = 0

    def next_wakeup(self) -> float | None:
        """The earliest time a peer becomes due, or None when nothing waits on the clock."""
        if self._in_flight >= self._max_in_flight:
            return None
        peer = self._next()
        return peer.next_at if peer is not None else None

    def view(self) -> str:
        """Which instance of each peer was reached, as a digest: two pods with the same view
        reached the same processes. Probes that cannot tell instances apart (icmp, tcp:PORT,
        dns) leave every instance empty, so their views agree on indices alone."""
        states = self.peers
        return view_digest(s.instance if (s := states.get(i)) else "" for i in range(self._n))

    def missing(self) -> list[PeerState]:
        """The targets not reached yet (O(targets), not O(peers))."""
        return [self.peers[i] for i in self._targets if not self.peers[i].reached]
