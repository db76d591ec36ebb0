"""Names whose every address refused: tried again at them, without asking DNS, for a while.

A peer's pod is published (and its address answers) before its agent listens, so the first
attempts of a name, and a member's first dials of its coordinator, are refused; each retry used
to ask cluster DNS again for an answer it had just given (and that cluster DNS serves from its
cache for its TTL anyway: CoreDNS's is 5 s). A refusal says the pod is there: for
``Timing.refused_reuse`` seconds after DNS gave them, the next attempt or dial tries the same
addresses. When DNS then gives the same addresses and they refuse again, the next window is
twice as long, up to ``Timing.refused_reuse_cap`` (a cluster DNS cache may serve an answer that
old anyway: kubeadm's Corefile says ``cache 30``). A connect or hello that timed out at every
address counts as a refusal here (``agent.core.answers.at_the_address``): the pod is there, too
busy to answer in time (agents on two cores at load 100), and asking its name at each retry
cost a member one query a name every few seconds for as long as it stayed busy (a member of a
200-pod Job in the in-memory cluster, its peers busy 30 s each: 98 queries, 15 now); one that
said hello and then times out is tried there again, not asked for.
Anything else asks DNS again at once: an answer (from whichever pod, the identity check
settles who it is), no route, NXDOMAIN, other addresses. So does a lookup of its
name that gives other addresses (the coordinator's check of a held session), and a hello
claiming the peer from another address (its agent is up elsewhere: a replaced pod whose old
address DNS still gives). A hello from an address that refused is tried there once more
without a query (a Job whose agents start slowly asked every late peer's name again on its
hello), and DNS is asked only if it refuses again. The caller asks DNS for its own name every
time: that check is there to see DNS change. So a replaced pod's new address is found once its
name is asked again (below), and at once where it says hello.

In total, too: with each name on its own window, a pod whose targets' agents came minutes
after their pods were published (a Job whose agents start slowly: image pulls, a launch over
minutes) asked every one of them every half minute, ~7 times each over 150 s (the in-memory
cluster, 300 pods published at once and their agents started over 150 s: 53.6 queries a pod,
116 at the most; ``bench.cutanswer 300``: 445 a pod). Each such peer says hello
itself once its agent is up (a target targets this pod too; a coordinator looks around), and
the hello ends the reuse at once; so past its window a name is asked again only when the pod's
own gap has passed: one name that keeps refusing per gap, the gap doubling from ``reuse`` with
each such query up to ``total_cap``. A pod's queries for names that keep refusing then grow
with the log of the wait, not with the wait times the names; and when the probe says hello,
there are at most ``total_most`` of them in all (``Timing.refused_total_most``): the hello of
each late peer is what asks its name again, and a pod that waited minutes for its targets'
agents still asked one more name every 2 minutes (5 of 21 queries a pod in the in-memory
cluster, 64 pods launched over 600 s). A peer whose hello cannot come cannot be reached both
ways either; its attempts go on at the addresses that refused, without DNS.

Pure: the caller says what refused and when; this says which addresses to try without DNS.
"""

from __future__ import annotations

import math

from agent.core.inputs import ProbeResult, Unreached
from agent.core.timing import Timing
from agent.core.window import CONGESTION

__all__ = ["RefusedAnswers", "timed_out"]


def timed_out(result: ProbeResult) -> bool:
    """Whether an attempt failed by timing out (the peer or the network busy, not gone)."""
    return isinstance(result, Unreached) and result.failure.cause in CONGESTION


class RefusedAnswers:
    def __init__(
        self,
        reuse: float,
        cap: float | None = None,
        total_cap: float | None = None,
        total_most: int | None = None,
    ) -> None:
        self._reuse, self._cap = reuse, reuse if cap is None else cap
        #: the pod's own gap between queries for names whose window has ended, and when the next
        #: may go (``total_cap`` None: no such gap, each name on its own window alone)
        self._total_cap, self._gap, self._next_ask = total_cap, reuse, -math.inf
        #: how many such queries are left (None: no limit)
        self._left = total_most
        #: peer index -> (the addresses that refused, when DNS gave them, for how long)
        self._answers: dict[int, tuple[tuple[str, ...], float, float]] = {}
        #: peer index -> the addresses and window of the last reuse that ended: DNS giving
        #: the same addresses again, refused again, makes the next window longer
        self._ended: dict[int, tuple[tuple[str, ...], float]] = {}
        #: said hello since: tried at those addresses once more; True once an attempt or dial
        #: started after the hello (a refusal of one that started before it says nothing)
        self._heard: dict[int, bool] = {}

    @classmethod
    def of(cls, timing: Timing, *, hellos: bool = True) -> RefusedAnswers:
        """``hellos``: the probe says hello, so a peer that refused says hello once its agent
        is up (without one, past its window a name is asked again at the pod's gap for ever:
        nothing else finds a replaced pod's new address)."""
        most = timing.refused_total_most if hellos else None
        return cls(timing.refused_reuse, timing.refused_reuse_cap, timing.refused_total_cap, most)

    def tried(
        self, index: int, refused_at: tuple[str, ...], now: float, *, busy: bool = False
    ) -> None:
        """An attempt or dial of peer ``index`` ended: every one of ``refused_at`` refused or
        timed out (``busy``: timed out; empty: it ended any other way). The same addresses
        tried again keep their first time: DNS is asked again once the window since it gave
        them has passed. A peer that said hello from there and then times out is there, busy;
        a refusal of an attempt that started before its hello (its agent was not up yet) says
        nothing: either way it is tried there again (each such try asked its name again: 26 a
        member of 150 launched over 130 s in the in-memory cluster, against ``K + 7`` = 25)."""
        if index in self._heard and refused_at and (busy or not self._heard[index]):
            return
        if not refused_at or index in self._heard:  # refused after its hello: it is elsewhere
            self.forget(index)
            return
        known = self._answers.get(index)
        if known is not None and known[0] == refused_at:
            return
        ended = self._ended.pop(index, None)
        window = self._reuse
        if ended is not None and ended[0] == refused_at:
            window = min(2 * ended[1], self._cap)
        self._answers[index] = (refused_at, now, window)

    def forget(self, index: int) -> None:
        """The next attempt or dial of peer ``index`` asks DNS, the window afresh."""
        self._answers.pop(index, None)
        self._ended.pop(index, None)
        self._heard.pop(index, None)

    def heard(self, index: int, address: str) -> None:
        """Peer ``index`` said hello from ``address``: its agent is up. From an address that
        refused until now (DNS gave it: the hello alone is no evidence), the next attempt or
        dial tries there once more, whatever the window or the pod's gap, and asks DNS only if
        that refuses too; from another, it asks DNS at once (a replaced pod is elsewhere)."""
        known = self._answers.get(index)
        if known is not None and address in known[0]:
            self._heard[index] = False
        else:
            self.forget(index)

    def gave(self, index: int, address: str) -> bool:
        """Whether DNS gave ``address`` for ``index``'s name, which refused there since: a
        hello from there is from where the name leads (evidence), not a claim from elsewhere."""
        known = self._answers.get(index)
        return known is not None and address in known[0]

    def relisted(self, index: int, addresses: tuple[str, ...]) -> None:
        """DNS gave ``addresses`` for ``index``'s name (a lookup): others end the reuse."""
        known = self._answers.get(index)
        if known is not None and known[0] != addresses:
            self.forget(index)

    def addresses(self, index: int, now: float) -> tuple[str, ...]:
        """Where to try peer ``index`` without asking DNS; empty: ask DNS."""
        known = self._answers.get(index)
        if known is None:
            return ()
        addresses, given, window = known
        if index in self._heard:
            self._heard[index] = True  # the try after the hello
            return addresses
        if now < given + window or now < self._next_ask:
            return addresses
        if self._left is not None and self._left <= 0:
            return addresses  # its hello (or other addresses for its name) asks again
        del self._answers[index]
        self._ended[index] = (addresses, window)
        if self._total_cap is not None:
            self._next_ask, self._gap = now + self._gap, min(2 * self._gap, self._total_cap)
        if self._left is not None:
            self._left -= 1
        return ()
