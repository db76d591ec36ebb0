"""Why a peer is not reached: the typed cause every failure carries beside its text.

The text is for people (it names the address, the rcode, the errno); the cause is what code
decides on (``hints``), so a hint never depends on the wording of a message.
"""

from __future__ import annotations

import enum

from agent.values import value

__all__ = ["DNS_CAUSES", "NOT_ASKED_WHY", "NOT_TRIED", "TELLING_CAUSES", "Cause", "Failure"]


class Cause(enum.Enum):
    NOT_TRIED = "not tried yet"
    NXDOMAIN = "the name does not exist"
    NO_ADDRESS = "the name has no address record"
    DNS_FAILED = "cluster DNS failed (timeout, SERVFAIL, REFUSED, a broken answer)"
    NOT_LISTED = "not among the addresses DNS lists for the Service"
    #: past a cut-short Service answer, which lists only some pods: no proof of absence
    NOT_ASKED = "not in a cut-short answer of the Service, and its name not asked yet"
    CONNECT_REFUSED = "nobody listens on the port"
    CONNECT_TIMEOUT = "the connect timed out"
    UNREACHABLE = "the network failed (no route, reset)"
    NO_ECHO = "no echo reply"
    HELLO_FAILED = "the hello failed (late, malformed, closed)"
    STRANGER = "a pod of another job or run answered"
    #: the pod answers for this job (and run, and index) from another barrier: it has not begun
    #: this one yet (a named barrier its clients have not asked for); it is there all the same
    NOT_BEGUN = "the pod has not begun this barrier yet"
    DISAGREES = "a pod of this job disagrees on it"
    REFUSED_BY_PEER = "the peer refused this pod (token)"
    WRONG_TOKEN = "the peer's token proof failed (another token, or none)"
    OTHER_INSTANCE = "another instance of the pod answered"
    UNLISTED_SOURCE = "its agent talks from an address DNS does not list for it"
    REPLACED = "this pod was replaced: a newer instance of it answers at its own name"
    RESTARTED = "restarted: reaching its new instance"
    BUG = "failed with a bug (reported)"


#: causes that explain a later, vaguer failure of the same peer: a peer with another token that
#: times out and leaves first is then only "refused" (nobody listens), which would send the
#: user after the wrong problem
TELLING_CAUSES = frozenset({Cause.REFUSED_BY_PEER, Cause.WRONG_TOKEN, Cause.DISAGREES})

#: causes that say the name was not found in DNS (as opposed to DNS failing, or a probe)
DNS_CAUSES = frozenset({Cause.NXDOMAIN, Cause.NO_ADDRESS, Cause.NOT_LISTED})


@value
class Failure:
    """Why something did not work: ``reason`` for people (it names the address, the rcode, the
    errno), ``cause`` for code (hints, status), so no decision rests on a message's wording."""

    reason: str
    cause: Cause


#: why a peer (or the Service's name) is not reached before the first try
NOT_TRIED = Failure("not tried yet", Cause.NOT_TRIED)

#: why a peer past a cut-short Service answer is missing before its name is asked: not "not in
#: DNS", which would send the user to check publication for a pod DNS was never asked about
NOT_ASKED_WHY = "not reached, and its name not asked yet: the Service's answer was cut short"
