"""What happens to an agent: the events its I/O tasks feed into the pure core.

Each is a frozen value carrying only data (no sockets, no callbacks), so the same events drive the
shipped core under the runner and under the in-memory cluster of the tests.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent.core.causes import Cause
from agent.protocol.wire import Hello, Message

__all__ = [
    "AddressProbed",
    "Attempted",
    "Contacted",
    "Input",
    "Lost",
    "Opened",
    "ProbeResult",
    "Received",
    "Refused",
    "Resolution",
    "Swept",
]


@dataclass(frozen=True)
class Resolution:
    """Addresses found, or why none: NXDOMAIN, no answer, timeout, SERVFAIL, refused, …"""

    addresses: tuple[str, ...] = ()
    problem: str = ""
    #: the answer was cut short even over TCP: there are more addresses than it lists
    truncated: bool = False
    cause: Cause | None = None  # with a problem: NXDOMAIN, NO_ADDRESS or DNS_FAILED


@dataclass(frozen=True)
class ProbeResult:
    """One probe of one address, or one attempt of one peer by name."""

    reason: str = ""  # empty: reached
    #: the peer's agent says the barrier was released already (it is a late joiner's proof)
    released: bool = False
    #: the peer is of this job but disagrees on it: a configuration error, not a stale pod
    disagrees: bool = False
    #: which peer answered (the tcp probe's hello says it), and which instance of it
    index: int | None = None
    instance: str = ""
    cause: Cause | None = None  # with a reason: what code decides on

    @property
    def ok(self) -> bool:
        return not self.reason


@dataclass(frozen=True)
class Attempted:
    """One resolve-and-probe of peer ``index`` by name ended."""

    index: int
    result: ProbeResult
    address: str = ""
    addresses: tuple[str, ...] = ()


@dataclass(frozen=True)
class Swept:
    """The Service's own name resolved (bulk discovery): every published address, or why not."""

    resolution: Resolution


@dataclass(frozen=True)
class AddressProbed:
    """An address from the Service's records was probed; the hello says which peer it is."""

    address: str
    result: ProbeResult


@dataclass(frozen=True)
class Contacted:
    """Someone completed a handshake with us from ``address``, saying ``hello``. ``listed``:
    this pod dialled the address, which DNS gave for the name the hello claims (the member's
    session to its coordinator), so it needs no other proof of being a pod of the Job."""

    hello: Hello
    address: str
    listed: bool = False


@dataclass(frozen=True)
class Refused:
    """An incoming contact failed its handshake (another job, a bad token): why."""

    reason: str


@dataclass(frozen=True)
class Opened:
    """A barrier session's handshake completed on ``conn``: one this pod dialled (to the
    coordinator at ``address``) or one a member opened to it from ``address`` (``dialled``
    False)."""

    conn: int
    hello: Hello
    dialled: bool
    address: str = ""


@dataclass(frozen=True)
class Received:
    conn: int
    message: Message


@dataclass(frozen=True)
class Lost:
    """Session ``conn`` ended (closed, reset, a send that did not go out), or, with ``conn``
    :data:`~agent.core.effects.NO_CONN`, a member's dial of the coordinator failed."""

    conn: int
    reason: str


Input = Attempted | Swept | AddressProbed | Contacted | Refused | Opened | Received | Lost
