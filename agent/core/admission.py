"""Who counts without a token: contacts from addresses DNS does not list wait to be vouched for.

Pod traffic is not NATed, so without a token a contact counts only from an address DNS gives
for the pod it claims to be: its own name's answer (a ``Lookup``), the Service's (bulk
discovery), or where this pod reached it. A pod outside the Job can then neither be counted,
nor abort the barrier, nor make a peer look restarted. What comes from elsewhere is not acted
on, and the agent keeps of it only:

- a coordinator's *held session* (a member's, from an address not vouched for yet: a pod is
  published a moment after its first hello): its hello and the state its messages imply (its
  latest arrival, whether it acked), handed on once vouched for;
- a *sighting* (``Sightings``): a peer's claim heard from another address (it may have been
  replaced), never its hello: once DNS lists the address, the address is probed, and what
  answers there counts (a claim heard before may have been anybody's: addresses are reused);
  one of an index not reached yet lies dormant until the index is reached;
- the addresses to name in the line that says DNS does not list them.

Each is bounded per claimed index, per source address and in all (``Bounded``), the oldest
going first; held sessions for the whole process (``agent.core.heldshare``); the first time a
bound closes a session, a line says so. Each
is dropped once it can no longer count: its connection closed, its claimed index reached by a
newer instance, its address found for another index, or (a sighting) DNS not listing it in the
time a healthy cluster takes (``Timing.unlisted_warn_after``). Each is re-checked by a timer
(``Rechecks``) in every mode and with every probe kind; bulk discovery's Service answers vouch
too. A stranger (another job, another run) is never kept. Pure.

Such a contact is normal while cluster DNS catches up with a pod that just started: said at
debug level, and past ``Timing.unlisted_warn_after`` once more as a warning with what to check
(at once from loopback), each address once for the process until some answer lists it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Hashable, Iterable
from typing import TypeVar

from agent.core.bounded import UNBOUNDED, Bounded, Bounds
from agent.core.causes import Cause
from agent.core.effects import Close, Effect, Report
from agent.core.heldsession import HeldSession
from agent.core.heldshare import HELD, HeldShare
from agent.core.inputs import Lost, Opened, Received, Resolution
from agent.core.log import LogKind, LogLevel, LogLine
from agent.core.reach import Reach
from agent.core.recheck import Rechecks
from agent.core.sightings import Sightings
from agent.core.timing import DEFAULT_TIMING, Timing

__all__ = ["HELD", "SIGHTED", "Admission", "HeldSession"]

#: claims of reached peers heard from other addresses: one an address (its latest)
SIGHTED = Bounds(per_address=1, per_index=4, total=256)
K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

_UNLISTED = 256  # unlisted contacts' addresses, to be named while they wait
#: answers that rule on a claim: the name's addresses, or that it has none (not a DNS failure)
_RULINGS = frozenset({Cause.NXDOMAIN, Cause.NO_ADDRESS})


def _loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


class Admission:
    """``trusting``: a token proves membership (or ``--trust-source any``): nothing waits.
    Else ``lists`` says whether the Service's last answer listed an address, and ``reach``
    where this pod reached each peer."""

    def __init__(
        self,
        *,
        trusting: bool,
        reach: Reach,
        lists: Callable[[str], bool],
        timing: Timing = DEFAULT_TIMING,
        share: HeldShare | None = None,
        vouches: Callable[[int, str], bool] | None = None,
    ) -> None:
        """``share``: the held-session bound of the process, when it serves other barrier
        instances on its port too (default: this instance's own). ``vouches``: whether a peer
        passed on DNS evidence of an index at an address (``agent.core.vouching``)."""
        self.trusting, self._reach, self._lists, self._vouches = trusting, reach, lists, vouches
        self._share = share if share is not None else HeldShare()
        self._owner = self._share.join()
        self._held: Bounded[int, HeldSession] = Bounded(UNBOUNDED)  # bounded by the share
        self._sighted = Sightings(SIGHTED, reach)
        self._checks = Rechecks(timing)
        self.names: dict[int, frozenset[str]] = {}  # claimed index -> its name's last answer
        self._unlisted: dict[str, int] = {}  # address -> index claimed, oldest first

    # --- what counts ---------------------------------------------------------------------------
    def verified(self, index: int, address: str) -> bool:
        """Whether a contact from ``address`` claiming ``index`` is one of this Job's pods:
        with a token (proven by the handshake) or ``--trust-source any``, always; else when
        DNS gives the address for that pod's name or for the Service, or this pod reached
        ``index`` there."""
        if self.trusting:
            return True
        if not address:
            return False
        if (state := self._reach.peers.get(index)) is not None and state.address == address:
            return True
        vouched = self._vouches is not None and self._vouches(index, address)
        return address in self.names.get(index, ()) or self._lists(address) or vouched

    def patient(self, delay: float, *, coordinator: bool) -> None:
        """Past a cut: checks wait ``delay`` first (reports vouch first), the chain's break only."""
        self._checks.patient(delay, coordinator=coordinator)

    @property
    def waiting(self) -> bool:
        return bool(self._held or self._sighted)  # sessions or sightings wait for DNS

    def is_holding(self, conn: int) -> bool:
        return conn in self._held

    def held_from(self, index: int) -> str | None:
        """Where a contact claiming ``index`` came from, not vouched for: its newest session
        held, else its latest hello (with the default probe, its session may never open)."""
        session = self._held.get(held[-1]) if (held := self._held.claiming(index)) else None
        if session is not None:
            return session.opened.address
        return next((a for a, i in reversed(self._unlisted.items()) if i == index), None)

    # --- keeping ---------------------------------------------------------------------------------
    def hold(
        self, opened: Opened, now: float, *, unconnected: int, urgent: bool = False
    ) -> list[Effect]:
        """A member's session from an address not vouched for: held, unread, within the
        process's bound (``HeldShare``: up to ``HELD.total`` more than the ``unconnected``
        members, those without a session that counts, as a large Job's members dial before the
        coordinator has found them all), this instance's oldest closed to make room, or else
        the newcomer. Its member's older session from there can never count (a coordinator
        keeps the newest). ``urgent``: it contests a session counted (``contests``): its
        claimed index's name is asked at once, whatever the pace past a cut."""
        index, address = opened.hello.identity.index, opened.address
        older = set(self._held.claiming(index)) & set(self._held.at(address))
        out = self._drop_sessions(older)
        room = self._share.make_room(self._owner, index, address, unconnected=unconnected)
        if room is None:
            return out + self._closed([opened.conn], bound=True)
        gone = [self._held.pop(conn) for conn in room]
        self._held.add(opened.conn, index, address, HeldSession(opened))
        self._share.add(self._owner, opened.conn, index, address)
        self._checks.start(index, now, urgent=urgent)
        for session in gone:
            if session is not None:
                self._settle(session.index)
        return out + self._closed(sorted(room), bound=True)

    def contests(self) -> list[tuple[int, str]]:
        """The (index, instance) of the held sessions whose claimed index's name has not
        answered since they came: while one is of a newer instance than the session counted
        for its index, DNS has yet to say which of the two the index is (``Coordinator``)."""
        return [
            (held.index, held.opened.hello.identity.instance)
            for _, _, _, held in self._held
            if not held.answered
        ]

    def urge(self, index: int, now: float) -> None:
        """A release waits for DNS to rule on what claims ``index``: its name is asked now."""
        self._checks.start(index, now, urgent=True)

    def end(self) -> None:
        """This barrier instance has ended, its connections with it: what it held no longer
        counts against the process's bound."""
        self._share.leave(self._owner)

    def sight(self, index: int, address: str, instance: str, now: float) -> None:
        """Peer ``index`` said hello from ``address``, which is not vouched for: it may have
        been replaced there. Kept (its address, index and instance, never believed) for DNS
        to say; checked from now, or (dormant) once ``index`` is ``reached``."""
        evicted = self._sighted.add(index, address, instance)
        if self._sighted.checked(index):
            self._checks.start(index, now)
        for claimed in evicted:
            self._settle(claimed)

    def hint(self, index: int, now: float) -> bool:
        """A hello from an address not vouched for claims ``index``, a peer attempted by name:
        ``Rechecks.hint`` (True for the first: its attempt asks at once)."""
        return self._checks.hint(index, now)

    def reached(self, index: int, address: str, instance: str, now: float) -> None:
        """``instance`` of peer ``index`` was reached at ``address``: a sighting of it from
        there is answered; one from elsewhere, or of a newer instance, wakes, to be checked."""
        self._sighted.reached(index, address, instance)
        self._checks.unhint(index)
        if self._sighted.checked(index):
            self._checks.start(index, now)
        self._settle(index)

    def note(self, index: int, address: str) -> None:
        """A contact from ``address`` that is not vouched for: to be named in the log if the
        next answer does not list it either."""
        self._unlisted.pop(address, None)
        self._unlisted[address] = index
        if len(self._unlisted) > _UNLISTED:
            del self._unlisted[next(iter(self._unlisted))]

    def absorb(self, event: Opened | Received | Lost) -> list[Effect] | None:
        """None when ``event`` is not on a held session; else what it comes to: a message's
        state kept, or the session dropped (with its loss, or closed for a message a member
        may not send)."""
        held = self._held.get(event.conn)
        if held is None or isinstance(event, Opened):
            return None
        if isinstance(event, Received) and held.absorb(event.message):
            return []
        self._release(event.conn)
        return [Close(event.conn)] if isinstance(event, Received) else []

    # --- dropping what can no longer count ------------------------------------------------------
    def prune(self, index: int, addresses: Iterable[str]) -> list[Effect]:
        """Peer ``index`` is at ``addresses`` (reached there, or DNS gives them for its name):
        what claims another index from there, or an older instance of ``index`` than one
        heard of, can no longer count."""
        addresses = set(addresses)
        unfit = {c for a in addresses for c in self._held.at(a)} - set(self._held.claiming(index))
        for conn in self._held.claiming(index):
            held = self._held.get(conn)
            if held is not None and self._reach.stale(index, held.opened.hello.identity.instance):
                unfit.add(conn)
        for claimed in self._sighted.found_at(index, addresses):
            self._settle(claimed)
        return self._drop_sessions(unfit)

    def _drop_sessions(self, conns: Iterable[int]) -> list[Effect]:
        """Stop holding these sessions, and close them."""
        return self._closed([conn for conn in sorted(conns) if self._release(conn)])

    def _release(self, conn: int) -> bool:
        """Stop holding session ``conn``; False if it was not held."""
        held = self._unhold(conn)
        if held is not None:
            self._settle(held.index)
        return held is not None

    def _unhold(self, conn: int) -> HeldSession | None:
        self._share.drop(self._owner, conn)
        return self._held.pop(conn)

    def _closed(self, conns: list[int], *, bound: bool = False) -> list[Effect]:
        """Close these sessions (no longer held); a bound's first closing in the process is
        said once."""
        out: list[Effect] = [Close(conn) for conn in conns]
        if bound and out and self._share.first_bound():
            out.append(Report(LogLine(LogKind.IGNORED, _bound_line(), {"bound": HELD.total})))
        return out

    def _settle(self, index: int) -> None:
        """If nothing claiming ``index`` is to be checked any more, its checks stop."""
        if not self._held.claiming(index) and not self._sighted.checked(index):
            self._checks.stop(index)
            self.names.pop(index, None)

    # --- checking again ---------------------------------------------------------------------------
    def take_due(self, now: float) -> list[int]:
        """The claimed indices whose names are to be asked for now."""
        for index in self._checks.unhint_old(now):
            self._settle(index)
        return self._checks.take_due(now)

    def skipped(self, index: int, retry: float | None = None) -> None:
        """The check of ``index`` taken is not asked now: ``Rechecks.skipped``."""
        self._checks.skipped(index, retry)

    def next_wakeup(self) -> float:
        return self._checks.next_wakeup()

    def looked_up(self, index: int, resolution: Resolution, now: float) -> list[Effect]:
        """The lookup of ``index``'s name came back. Once the checks have lasted the time a
        healthy cluster takes to publish a pod, a sighting it does not vouch for is given up on
        (nothing is connected there to wait for)."""
        give_up = self._checks.answered(index, now, resolution.failure)
        out: list[Effect] = []
        if resolution.failure is None or resolution.failure.cause in _RULINGS:
            self._checks.ruled(index)
            for conn in self._held.claiming(index):  # DNS has spoken: no longer contesting
                if (held := self._held.get(conn)) is not None:
                    held.answered = True
        if resolution.failure is None:
            self.named(index, resolution.addresses)
            out = self.prune(index, resolution.addresses)
        if give_up:
            self._sighted.give_up(index, lambda address: self.verified(index, address))
        self._settle(index)
        return out

    def named(self, index: int, addresses: Iterable[str]) -> None:
        """DNS gives ``addresses`` for ``index``'s name (a check's answer, or an attempt's)."""
        if self._held.claiming(index) or self._sighted.checked(index):
            self.names[index] = frozenset(addresses)

    def take_vouched(
        self, index: int | None = None, address: str | None = None
    ) -> tuple[list[tuple[int, str]], list[HeldSession]]:
        """The sightings (index, address) and held sessions now ``verified``, which no longer
        wait: those that claim ``index`` or come from ``address``, or all if neither is given
        (what a Service answer or a lookup of ``index``'s name may have vouched for)."""
        for address_, claimed in list(self._unlisted.items()):
            if self.verified(claimed, address_):
                del self._unlisted[address_]
                self._share.said.forget(address_)
        sightings = self._sighted.take(index, address, self.verified)
        for claimed, _ in sightings:
            self._settle(claimed)
        sessions = []
        for conn, claimed, at, held in self._candidates(self._held, index, address):
            if self.verified(claimed, at):
                self._unhold(conn)
                self._share.said.forget(at)
                self._settle(claimed)
                sessions.append(held)
        return sightings, sessions

    @staticmethod
    def _candidates(
        store: Bounded[K, V], index: int | None, address: str | None
    ) -> list[tuple[K, int, str, V]]:
        if index is None and address is None:
            return list(store)
        keys = set(store.claiming(index) if index is not None else ())
        keys |= set(store.at(address) if address is not None else ())
        return [item for item in store if item[0] in keys]

    # --- saying so --------------------------------------------------------------------------------
    def pending(self, index: int | None = None) -> set[str]:
        """The addresses of what waits (claiming ``index``, if given)."""
        unlisted = {a for a, i in self._unlisted.items() if index in (None, i)}
        if index is None:
            return unlisted | self._held.addresses() | self._sighted.addresses()
        held = {self._held_address(c) for c in self._held.claiming(index)}
        return unlisted | held | set(self._sighted.claiming(index))

    def _held_address(self, conn: int) -> str:
        held = self._held.get(conn)
        return held.opened.address if held is not None else ""

    def report_ignored(
        self, before: set[str], now: float, *, port: int, warn_after: float
    ) -> list[Report]:
        """What a fresh answer did not vouch for (it waited before the answer): each address
        named once at debug level (DNS publishes a pod seconds after its first hello), and once
        more as a warning when still unlisted ``warn_after`` later, or at once from loopback,
        where no pod is (a proxy rewrites source addresses). Once for the process, whatever
        barrier instance heard it: said again only after some answer has listed it."""
        unlisted = before & self.pending()
        said = self._share.said
        new = said.first_named(unlisted, now)
        overdue = sorted(
            a
            for a in unlisted - said.warned
            if a in said.since and (_loopback(a) or now - said.since[a] >= warn_after)
        )
        said.warned.update(overdue)
        out: list[LogLine] = []
        if new:
            line = f"contacts come from {_shown(new)}, which DNS does not list for the Service yet"
            out.append(LogLine(LogKind.IGNORED, line, {"addresses": new}, level=LogLevel.DEBUG))
        if overdue:
            out.append(_still_unlisted(overdue, warn_after, port))
        return [Report(line) for line in out]


def _shown(addresses: list[str]) -> str:
    more = len(addresses) - 3
    return ", ".join(addresses[:3]) + (f" and {more} more" if more > 0 else "")


def _still_unlisted(addresses: list[str], warn_after: float, port: int) -> LogLine:
    """The warning for contacts DNS has not listed in the time a healthy cluster takes, with
    the troubleshooting table's causes: a pod outside the Service, or rewritten addresses."""
    loopback = all(_loopback(a) for a in addresses)
    since = "from loopback, where no pod is" if loopback else f"for {warn_after:g}s"
    line = (
        f"contacts come from {_shown(addresses)}, which DNS does not list for the Service "
        f"({since}): not counted unless a later answer lists them (pods outside this Job never "
        "are); a pod of this Job must be selected by the Service (publishNotReadyAddresses: "
        "true); a service mesh or proxy that rewrites source addresses needs --token-file "
        f"(recommended) or --trust-source any, or port {port} kept out of the mesh"
    )
    return LogLine(LogKind.IGNORED, line, {"addresses": addresses}, level=LogLevel.WARNING)


def _bound_line() -> str:
    return (
        "sessions from addresses DNS does not list are held at most "
        f"{HELD.per_address} a source address, {HELD.per_index} a claimed pod and "
        f"{HELD.total} in all, for every barrier this process serves: closing the oldest "
        "beyond that (a barrier's own, or else the newcomer; said once)"
    )
