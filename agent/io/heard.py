"""What the Job's pods said of themselves: identities from hellos that passed their handshake.

The exit barrier's report of which pods' workloads failed reads the exit code in a pod's hello
(``Identity.exit_code``). A hello is anyone's to send, so it counts only from a pod this one
admitted: at release, the instance this pod reached, at the address it reached it at (an address
DNS gave; with a token, the proof checked). ``Heard`` keeps the hellos that passed their
handshake, by (address, claimed index), and at the release the peers reached
(``released``); :func:`agent.commands.leave.failed_peers` joins the two.

Bounded: at most ``4 * peers + 256`` hellos. A hello that came to us (from anywhere) is dropped
before one this pod got by dialling an address DNS gave, oldest first.
"""

from __future__ import annotations

import collections

from agent.protocol.handshake import Match, compare
from agent.protocol.wire import Identity
from agent.values import value

__all__ = ["Heard", "PeerReached"]

_SLACK = 256


@value
class PeerReached:
    """Peer ``index`` as this pod reached it: at ``address``, instance ``instance`` ("" when
    the probe cannot tell instances apart)."""

    index: int
    address: str
    instance: str


class Heard:
    def __init__(self, me: Identity) -> None:
        self.me = me
        self._limit = 4 * me.peers + _SLACK
        #: replies to this pod's probes (addresses DNS gave), and hellos that came to it
        self._dialled: collections.OrderedDict[tuple[str, int], Identity] = (
            collections.OrderedDict()
        )
        self._came: collections.OrderedDict[tuple[str, int], Identity] = collections.OrderedDict()
        #: the peers this pod had reached when its barrier released (None before)
        self.reached: tuple[PeerReached, ...] | None = None

    def dialled(self, address: str, identity: Identity) -> None:
        """A reply to this pod's probe of ``address`` passed the handshake."""
        self._keep(self._dialled, address, identity)

    def came(self, address: str, identity: Identity) -> None:
        """A hello from ``address`` passed the handshake."""
        self._keep(self._came, address, identity)

    def released(self, reached: tuple[PeerReached, ...]) -> None:
        self.reached = reached

    def said_by(self, peer: PeerReached) -> Identity | None:
        """What ``peer`` said of itself in a hello, if this pod heard it: the instance reached
        (any, when the probe cannot tell), at the address reached."""
        for book in (self._dialled, self._came):
            identity = book.get((peer.address, peer.index))
            if identity is not None and peer.instance in ("", identity.instance):
                return identity
        return None

    def _keep(
        self,
        book: collections.OrderedDict[tuple[str, int], Identity],
        address: str,
        identity: Identity,
    ) -> None:
        if compare(self.me, identity, expected_index=None)[0] is not Match.SAME:
            return
        if not 0 <= identity.index < self.me.peers or not address:
            return
        book.pop((address, identity.index), None)
        book[(address, identity.index)] = identity
        while len(self._dialled) + len(self._came) > self._limit:
            (self._came or self._dialled).popitem(last=False)
