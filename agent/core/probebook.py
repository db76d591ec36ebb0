"""The book of the Service's addresses that bulk discovery probes: which are out, which answered as
a reached peer, which did not and why.

An address that answered as a peer is not probed again by later rounds, only by a push (a peer
that is not reached said hello from it: the address was reused) or once the peer there
restarted. A round's probes are tracked until they land: the next round waits for them.

Pure: the caller claims addresses before probing them and reports each probe's result.
"""

from __future__ import annotations

from collections.abc import Iterable

from agent.core.causes import TELLING_CAUSES, Failure

__all__ = ["ProbeBook"]


class ProbeBook:
    def __init__(self) -> None:
        self._identified: set[str] = set()  # addresses that answered as a reached peer
        self._probing: set[str] = set()
        #: this round's probes still out: the next round waits for them (a round during a sweep
        #: of thousands would only parse the same answer again)
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
        """A round's answer: the addresses to probe now, claimed, in order."""
        self._round = {a for a in addresses if self.claim(a)}
        return sorted(self._round)

    def forget(self, address: str) -> None:
        """The peer identified at ``address`` restarted: probe the address again, every round
        until it answers (a restarted container keeps its pod's address)."""
        self._identified.discard(address)

    def probed(self, address: str, failure: Failure | None) -> None:
        """The probe of ``address`` landed: it answered as a reached peer (``failure`` None),
        or did not, and why."""
        self._probing.discard(address)
        self._round.discard(address)
        if failure is None:
            self._identified.add(address)
            self.unidentified.pop(address, None)
            self.telling.pop(address, None)
        else:
            self.unidentified[address] = failure
            if failure.cause in TELLING_CAUSES:
                self.telling[address] = failure
