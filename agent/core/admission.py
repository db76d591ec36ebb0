"""Who counts without a token: contacts from addresses DNS does not list wait to be vouched for.

Pod traffic is not NATed, so without a token a contact counts only from an address DNS lists
for the Service (or one where this pod reached the peer it claims to be): a pod outside the Job
can neither be counted, nor abort the barrier, nor make a peer look restarted. A contact from
another address is kept, a bounded few, until a fresh answer lists it (a pod is published a
moment after it first says hello); a coordinator's session from there is held, its first
messages kept unread. Pure: :class:`agent.core.agent.Agent` asks and replays what is vouched for.

Such a contact is normal while cluster DNS catches up with a pod that just started, so it is
said at debug level; one that lasts past ``Timing.unlisted_warn_after`` is said once more, as a
warning with what to check.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator

from agent.core.effects import Report
from agent.core.inputs import Contacted, Lost, Opened, Received
from agent.core.log import LogKind, LogLevel, LogLine
from agent.core.reach import Reach
from agent.protocol.wire import Message

__all__ = ["Admission"]

#: contacts from addresses DNS does not list, kept for a fresh answer to vouch for them
_UNVERIFIED = 256
_HELD = 4  # messages held per unverified session (its Arrive, an Ack)


def _loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


class Admission:
    """``trusting``: a token proves membership (or ``--trust-source any``): nothing waits.
    Else ``lists`` says whether DNS lists an address for the Service, and ``reach`` where this
    pod reached each peer."""

    def __init__(self, *, trusting: bool, reach: Reach, lists: Callable[[str], bool]) -> None:
        self.trusting = trusting
        self._reach, self._lists = reach, lists
        self._unverified: dict[str, Contacted] = {}
        self._held: dict[int, tuple[Opened, list[Message]]] = {}  # unverified sessions
        #: when each address still waiting was first named unlisted, and those warned of
        self._unlisted_since: dict[str, float] = {}
        self._warned: set[str] = set()

    def verified(self, index: int, address: str) -> bool:
        """Whether a contact from ``address`` claiming ``index`` is one of this Job's pods:
        with a token (proven by the handshake) or ``--trust-source any``, always; else when
        DNS lists the address for the Service, or this pod reached ``index`` there."""
        if self.trusting:
            return True
        if 0 <= index < len(self._reach.peers) and self._reach.peers[index].address == address:
            return bool(address)
        return self._lists(address)

    @property
    def waiting(self) -> bool:
        """Whether contacts or sessions wait for a DNS answer to vouch for them."""
        return bool(self._unverified or self._held)

    def is_holding(self, conn: int) -> bool:
        return conn in self._held

    def keep(self, contact: Contacted) -> None:
        """A contact from an unlisted address: kept (the newest of a bounded few), not acted on,
        whatever it claims (a newer instance would make every pod forget the real one)."""
        self._unverified.pop(contact.address, None)
        self._unverified[contact.address] = contact
        if len(self._unverified) > _UNVERIFIED:
            del self._unverified[next(iter(self._unverified))]

    def hold(self, opened: Opened) -> None:
        """A coordinator's session from an unlisted address: held, its first messages kept."""
        self._held[opened.conn] = (opened, [])

    def absorb(self, event: Opened | Received | Lost) -> bool:
        """True when ``event`` is on a held session, which takes it: its message kept (a
        few), or the session dropped with its loss."""
        if event.conn not in self._held:
            return False
        messages = self._held[event.conn][1]
        if isinstance(event, Lost):
            del self._held[event.conn]
        elif isinstance(event, Received) and len(messages) < _HELD:
            messages.append(event.message)
        return True

    def pending(self) -> set[str]:
        """The addresses of the contacts and sessions that wait."""
        return set(self._unverified) | {opened.address for opened, _ in self._held.values()}

    def take_vouched_contacts(self) -> Iterator[Contacted]:
        """The contacts now ``verified``, each asked as it comes (handling one may change what
        vouches for the next); they no longer wait."""
        for address, contact in list(self._unverified.items()):
            if self.verified(contact.hello.identity.index, address):
                yield self._unverified.pop(address)

    def take_vouched_sessions(self) -> Iterator[tuple[Opened, list[Message]]]:
        """The held sessions now ``verified``, with the messages held, as above."""
        for conn, (opened, messages) in list(self._held.items()):
            if self.verified(opened.hello.identity.index, opened.address):
                del self._held[conn]
                yield opened, messages

    def report_ignored(
        self, before: set[str], now: float, *, port: int, warn_after: float
    ) -> list[Report]:
        """Contacts a fresh answer did not vouch for (they were there before it): each address
        named once at debug level (DNS publishes a pod seconds after its first hello), and once
        more as a warning when still unlisted ``warn_after`` later, or at once from loopback,
        where no pod is (a proxy rewrites source addresses)."""
        unlisted = before & self.pending()
        self._unlisted_since = {a: t for a, t in self._unlisted_since.items() if a in unlisted}
        self._warned &= unlisted  # one that stopped waiting (listed, or gone) starts again
        new = sorted(unlisted - self._unlisted_since.keys())
        self._unlisted_since.update(dict.fromkeys(new, now))
        overdue = sorted(
            a
            for a in unlisted - self._warned
            if _loopback(a) or now - self._unlisted_since[a] >= warn_after
        )
        self._warned.update(overdue)
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
