"""What happens to an agent: the events its I/O tasks feed into the pure core.

Each is a frozen value carrying only data (no sockets, no callbacks), so the same events drive the
shipped core under the runner and under the in-memory cluster of the tests.
"""

from __future__ import annotations

from functools import cached_property

from agent.core.causes import Cause, Failure
from agent.protocol.wire import Hello, Message
from agent.values import value

__all__ = [
    "AddressProbed",
    "Attempted",
    "ContactRefused",
    "Contacted",
    "DialFailed",
    "Disagreeing",
    "Input",
    "LookedUp",
    "Lost",
    "Opened",
    "ProbeResult",
    "Reached",
    "Received",
    "Resolution",
    "Swept",
    "Unreached",
]


@value
class Resolution:
    """Addresses found, or why none (``failure``: NXDOMAIN, no address record, DNS failed)."""

    addresses: tuple[str, ...] = ()
    #: the answer was cut short even over TCP: there are more addresses than it lists
    truncated: bool = False
    failure: Failure | None = None
    #: the server answered, but later than ``Timing.dns_timeout``: it has fallen behind (the
    #: pace slows down), and the answer is used all the same (asking again would cost it
    #: another query it answers as late)
    late: bool = False

    @cached_property
    def listed(self) -> frozenset[str]:
        """``addresses`` as a set, made once per answer: whoever holds the same answer (the
        pods of the in-memory cluster, given one cut answer of 4,091 addresses) shares it."""
        return frozenset(self.addresses)


@value
class Reached:
    """A probe reached a peer's pod. With the tcp probe the hello says which peer answered
    (``index``), which instance (process) of it, and whether the barrier was released there (a
    late joiner's proof); the other probes (icmp, tcp:PORT, dns) cannot tell (``index`` None)."""

    index: int | None = None
    instance: str = ""
    released: bool = False


@value
class Unreached:
    """A probe (or every address of a name) did not reach the peer, and why."""

    failure: Failure


@value
class Disagreeing:
    """A pod of this job answered but disagrees on it (peer count, port): a configuration error
    that aborts everyone, not a stale pod to skip."""

    reason: str

    @property
    def failure(self) -> Failure:
        return Failure(self.reason, Cause.DISAGREES)


#: what one probe of one address, or one attempt of one peer by name, came to
ProbeResult = Reached | Unreached | Disagreeing


@value
class Attempted:
    """One resolve-and-probe of peer ``index`` by name ended. ``refused_at``: the name's
    addresses, when every one refused the connection or let it time out (the pod is there, its
    agent not up or too busy: ``agent.core.answers.at_the_address``)."""

    index: int
    result: ProbeResult
    address: str = ""
    addresses: tuple[str, ...] = ()
    refused_at: tuple[str, ...] = ()
    #: the name's answer came late (``Resolution.late``)
    late: bool = False


@value
class Swept:
    """The Service's own name resolved (bulk discovery): every published address, or why not."""

    resolution: Resolution


@value
class AddressProbed:
    """An address from the Service's records was probed; the hello says which peer it is."""

    address: str
    result: ProbeResult


@value
class LookedUp:
    """Peer ``index``'s own name resolved (a ``Lookup``): its addresses, or why none."""

    index: int
    resolution: Resolution


@value
class Contacted:
    """Someone completed a handshake with us from ``address``, saying ``hello``. ``listed``:
    this pod dialled the address, which DNS gave for the name the hello claims (the member's
    session to its coordinator), so it needs no other proof of being a pod of the Job."""

    hello: Hello
    address: str
    listed: bool = False


@value
class ContactRefused:
    """This pod refused an incoming contact whose handshake failed (a bad token proof): why."""

    reason: str


@value
class Opened:
    """A barrier session's handshake completed on ``conn``: one this pod dialled (to the
    coordinator at ``address``) or one a member opened to it from ``address`` (``dialled``
    False)."""

    conn: int
    hello: Hello
    dialled: bool
    address: str = ""


@value
class Received:
    conn: int
    message: Message


@value
class Lost:
    """Session ``conn`` ended (closed, reset, a send that did not go out)."""

    conn: int
    reason: str


@value
class DialFailed:
    """A member's dial of the coordinator (``Dial``) opened no session: why, for each address;
    ``refused_at``: the addresses, when every one refused the connection or let the connect or
    hello time out (``agent.core.answers.at_the_address``); ``server_failed``:
    DNS gave no answer for the coordinator's name (a timeout, SERVFAIL); ``disagrees``: why
    the coordinator that answered is a pod of this job that disagrees on it (peer count, port),
    or ''. A probe that says no hello never learns the peer count: this hello may be the only
    one a misconfigured member sees."""

    reason: str
    refused_at: tuple[str, ...] = ()
    server_failed: bool = False
    disagrees: str = ""
    #: every address answered as the coordinator, in a barrier it has not begun yet
    not_begun: bool = False


Input = (
    Attempted
    | Swept
    | AddressProbed
    | LookedUp
    | Contacted
    | ContactRefused
    | Opened
    | Received
    | Lost
    | DialFailed
)
