"""Probes: how one peer counts as reached at one address.

``tcp`` says hello to the peer's agent and checks who answers; ``tcp:PORT`` only connects;
``icmp`` pings; ``dns`` is satisfied by resolution alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import anyio

from agent.channel import Channel, HandshakeFailed, client_handshake
from agent.config import Probe
from agent.errors import WireError
from agent.handshake import Verdict
from agent.icmp import ping
from agent.wire import Identity

__all__ = ["ProbeResult", "connect_problem", "probe"]

CONNECT_TIMEOUT = 3.0


def connect_problem(exc: OSError) -> str:
    """'refused', 'No route to host', …: anyio hides the socket's own error behind its cause."""
    cause = exc.__cause__ if isinstance(exc.__cause__, OSError) else exc
    if isinstance(cause, ConnectionRefusedError):
        return "refused"
    return cause.strerror or str(cause)


@dataclass(frozen=True)
class ProbeResult:
    reason: str = ""  # empty: reached
    #: the peer's agent says the barrier was released already (it is a late joiner's proof)
    released: bool = False
    #: the peer is of this job but disagrees on it: a configuration error, not a stale pod
    disagrees: bool = False

    @property
    def ok(self) -> bool:
        return not self.reason


async def probe(
    kind: Probe,
    address: str,
    *,
    me: Identity,
    target: int,
    token: bytes | None,
    released: bool = False,
) -> ProbeResult:
    if kind.kind == "dns":
        return ProbeResult()
    if kind.kind == "icmp":
        return ProbeResult(await ping(address, timeout=CONNECT_TIMEOUT))
    port = kind.port or me.port
    try:
        with anyio.fail_after(CONNECT_TIMEOUT):
            stream = await anyio.connect_tcp(address, port)
    except TimeoutError:
        return ProbeResult(f"connect to port {port} timed out")
    except OSError as exc:
        return ProbeResult(f"connect to port {port}: {connect_problem(exc)}")
    channel = Channel(stream)
    try:
        if kind.port is not None:
            return ProbeResult()
        reply = await client_handshake(
            channel, me=me, role="probe", token=token, expected_index=target, released=released
        )
        return ProbeResult(released=reply.released)
    except HandshakeFailed as exc:
        return ProbeResult(exc.reason, disagrees=exc.verdict == Verdict.DISAGREES)
    except WireError as exc:
        return ProbeResult(f"hello failed: {exc}")
    finally:
        await channel.aclose()
