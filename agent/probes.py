"""Probes: how one peer counts as reached at one address.

``tcp`` says hello to the peer's agent and checks who answers; ``tcp:PORT`` only connects;
``icmp`` pings; ``dns`` is satisfied by resolution alone.
"""

from __future__ import annotations

import anyio

from agent.channel import HANDSHAKE_TIMEOUT, LATE, Channel, HandshakeFailed, client_handshake
from agent.config import Probe
from agent.errors import WireError
from agent.handshake import Verdict
from agent.inputs import ProbeResult
from agent.tcp import TCPStream, open_tcp
from agent.wire import Identity

__all__ = ["ConnectFailed", "connect", "probe"]

CONNECT_TIMEOUT = 3.0


class ConnectFailed(Exception):
    """Connecting failed; the message is what users debug with: refused, timed out, no route."""


async def _open(address: str, port: int, source: str | None) -> TCPStream:
    """``source``: the address this agent listens on (--listen), so that a peer sees our hello
    come from the address it knows us by, and its push reaches us. The caller's deadline."""
    try:
        return await open_tcp(address, port, source)
    except OSError as exc:
        text = "refused" if isinstance(exc, ConnectionRefusedError) else exc.strerror or exc
        raise ConnectFailed(f"connect to port {port}: {text}") from None


def _timed_out(port: int) -> str:
    return f"connect to port {port} timed out"


async def connect(address: str, port: int, *, source: str | None = None) -> Channel:
    """A connection for a barrier session; ConnectFailed says why there is none."""
    try:
        with anyio.fail_after(CONNECT_TIMEOUT):
            return Channel(await _open(address, port, source))
    except TimeoutError:
        raise ConnectFailed(_timed_out(port)) from None


async def probe(
    kind: Probe,
    address: str,
    *,
    me: Identity,
    target: int | None,
    token: bytes | None,
    released: bool = False,
    source: str | None = None,
) -> ProbeResult:
    if kind.kind == "dns":
        return ProbeResult()
    if kind.kind == "icmp":
        from agent.icmp import ping  # only the icmp probe pays for it

        return ProbeResult(await ping(address, timeout=CONNECT_TIMEOUT))
    port = kind.port or me.port
    stream: TCPStream | None = None
    try:
        # One deadline for the whole probe (a cancel scope is a fifth of a probe's CPU): the
        # connect's, then from the connection on the reply's.
        with anyio.move_on_after(CONNECT_TIMEOUT) as scope:
            stream = await _open(address, port, source)
            if kind.port is not None:
                return ProbeResult()
            scope.deadline = anyio.current_time() + HANDSHAKE_TIMEOUT
            reply = await client_handshake(
                Channel(stream),
                me=me,
                role="probe",
                token=token,
                expected_index=target,
                released=released,
                timeout=None,
            )
        # Not fail_after: on a loaded node the connect can complete after its deadline has
        # cancelled the scope; a new deadline does not undo that, and fail_after, seeing the
        # new deadline ahead, swallowed the cancellation as if the probe had ended (a crash).
        if scope.cancelled_caught:
            return ProbeResult(_timed_out(port) if stream is None else f"hello failed: {LATE}")
        identity = reply.identity
        return ProbeResult(
            released=reply.released, index=identity.index, instance=identity.instance
        )
    except ConnectFailed as exc:
        return ProbeResult(str(exc))
    except HandshakeFailed as exc:
        return ProbeResult(exc.reason, disagrees=exc.verdict == Verdict.DISAGREES)
    except WireError as exc:
        return ProbeResult(f"hello failed: {exc}")
    finally:
        if stream is not None:
            await stream.aclose()
