"""The book of the Service's addresses that bulk discovery probes: which are out, which wait for
room in the probe window, which answered as a reached peer, which did not and why.

An address that answered as a peer is not probed again by later rounds, only by a push (a peer
that is not reached said hello from it: the address was reused) or once the peer there
restarted. A round's probes are tracked until they land: the next round waits for them. No more
than the congestion window (``agent.core.window``) are out at once; the rest of a round waits
here, a pushed address first.

Pure: the caller claims addresses before probing them and reports each probe's result.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable

from agent.core.causes import TELLING_CAUSES, Failure
from agent.core.window import Window

__all__ = ["ProbeBook"]


class ProbeBook:
    def __init__(self, max_in_flight: int = 256) -> None:
        self._identified: set[str] = set()  # addresses that answered as a reached peer
        self._probing: set[str] = set()  # claimed: out, or waiting for room in the window
        #: claimed addresses not sent yet, in the order they go out (pushed ones first)
        self._waiting: collections.deque[str] = collections.deque()
        #: the addresses out, each with its number in the window (``Window.send``)
        self._out: dict[str, int] = {}
        self.window = Window(cap=max_in_flight)
        #: this round's probes still out or waiting: the next round waits for them (a round
        #: during a sweep of thousands would only parse the same answer again)
        self._round: set[str] = set()
        #: addresses that did not answer as a peer, and why (for progress lines)
        self.unidentified: dict[str, Failure] = {}
        #: the last telling failure at each of those (``TELLING_CAUSES``): a peer with another
        #: token that left first is then only "refused", which tells the user nothing
        self.telling: dict[str, Failure] = {}

    @property
    def round_out(self) -> bool:
        """Whether probes of the last round are still out."""
        return bool(self._round)

    def claim(self, address: str, *, push: bool = False) -> bool:
        """Claim ``address`` for a probe; False when it needs none. A push (an unreached peer
        said hello from there) probes even an address known for another peer: it was reused."""
        if address in self._probing or (address in self._identified and not push):
            return False
        self._probing.add(address)
        return True

    def start_round(self, addresses: Iterable[str]) -> list[str]:
        """A round's answer: claimed, in order; the addresses to probe now (the window's room),
        the others wait for ``take``."""
        self._round = {a for a in addresses if self.claim(a)}
        self._waiting.extend(sorted(self._round))
        return self.take()

    def push(self, address: str) -> bool:
        """An unreached peer said hello from ``address``: True when it is to be probed now,
        whatever room the window has (its probe is what releases the barrier in milliseconds;
        one a peer at most, as each is claimed until it lands). False when one is out."""
        if address in self._out:
            return False
        self.claim(address, push=True)  # (if it waits in a round, it goes now instead)
        self._out[address] = self.window.send()
        return True

    def take(self) -> list[str]:
        """The waiting addresses the window has room for now, put out."""
        sent = []
        while self._waiting and self.window.room:
            address = self._waiting.popleft()
            # skipped: one pushed out meanwhile, or one an attempt by name found a peer at
            if address in self._probing and address not in self._out:
                self._out[address] = self.window.send()
                sent.append(address)
        return sent

    def forget(self, address: str) -> None:
        """The peer identified at ``address`` restarted: probe the address again, every round
        until it answers (a restarted container keeps its pod's address)."""
        self._identified.discard(address)

    def probed(self, address: str, failure: Failure | None) -> list[str]:
        """The probe of ``address`` landed: it answered as a reached peer (``failure`` None),
        or did not, and why. The waiting addresses to probe now (``take``)."""
        self._probing.discard(address)
        self._round.discard(address)
        number = self._out.pop(address, None)
        if number is not None:  # (an attempt by name also reports where it reached a peer)
            self.window.landed(number, None if failure is None else failure.cause)
        if failure is None:
            self._identified.add(address)
            self.unidentified.pop(address, None)
            self.telling.pop(address, None)
        else:
            self.unidentified[address] = failure
            if failure.cause in TELLING_CAUSES:
                self.telling[address] = failure
        return self.take()
