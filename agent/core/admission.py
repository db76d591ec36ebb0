"""Who counts without a token: contacts from addresses DNS does not list wait to be vouched for.

Pod traffic is not NATed, so without a token a contact counts only from an address DNS lists
for the Service (or one where this pod reached the peer it claims to be): a pod outside the Job
can neither be counted, nor abort the barrier, nor make a peer look restarted. A contact from
another address is kept, a bounded few, until a fresh answer lists it (a pod is published a
moment after it first says hello); a coordinator's session from there is held, its first
messages kept unread. Pure: :class:`agent.core.agent.Agent` asks and replays what is vouched for.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator

from agent.core.effects import Report
from agent.core.inputs import Contacted, Lost, Opened, Received
from agent.core.log import LogKind, LogLine
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
        self._reported: set[str] = set()  # addresses already named in an "ignored" line

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

    def report_ignored(self, before: set[str], port: int) -> list[Report]:
        """Contacts a fresh answer did not vouch for (they were there before it): named once,
        with what to do if they come through a proxy that rewrites source addresses."""
        new = sorted((before & self.pending()) - self._reported)
        if not new:
            return []
        self._reported.update(new)
        shown = ", ".join(new[:3]) + (f" and {len(new) - 3} more" if len(new) > 3 else "")
        line = (
            f"contacts come from {shown}, which DNS does not list for the Service: not counted "
            "unless a later answer lists them (pods outside this Job never are)"
        )
        if any(_loopback(a) for a in new):
            line += (
                "; from loopback, a service mesh or proxy may be rewriting source addresses: "
                "set --token-file (recommended) or --trust-source any, or keep port "
                f"{port} out of the mesh"
            )
        return [Report(LogLine(LogKind.IGNORED, line, {"addresses": new}))]
