"""Probes: how one peer counts as reached at one address.

``tcp`` says hello to the peer's agent and checks who answers; ``tcp:PORT`` only connects;
``icmp`` pings; ``dns`` is satisfied by resolution alone.
"""

from __future__ import annotations

from collections.abc import Callable

import anyio

from agent.config.model import Probe, ProbeKind
from agent.core.answers import blind, failed_handshake, hello_failed, replied
from agent.core.causes import Cause, Failure
from agent.core.inputs import ProbeResult, Unreached
from agent.core.timing import DEFAULT_TIMING, Timing
from agent.errors import WireError
from agent.io.channel import LATE, Channel, HandshakeFailed, client_handshake
from agent.io.sockets import connect_problem, connect_timed_out, connect_timeout
from agent.io.tcp import TCPStream, open_tcp
from agent.protocol.wire import Identity, Role

__all__ = ["ConnectFailed", "connect", "probe"]


class ConnectFailed(Exception):
    """Connecting failed; the message is what users debug with: refused, timed out, no route."""

    def __init__(self, message: str, cause: Cause) -> None:
        super().__init__(message)
        self.cause = cause


async def _open(address: str, port: int, source: str | None) -> TCPStream:
    """``source``: the address this agent listens on (--listen), so that a peer sees our hello
    come from the address it knows us by, and its push reaches us. The caller's deadline."""
    try:
        return await open_tcp(address, port, source)
    except OSError as exc:
        raise ConnectFailed(*connect_problem(exc, port)) from None


async def connect(
    address: str, port: int, *, source: str | None = None, timing: Timing = DEFAULT_TIMING
) -> Channel:
    """A connection for a barrier session; ConnectFailed says why there is none."""
    try:
        with anyio.fail_after(timing.connect_timeout):
            return Channel(await _open(address, port, source))
    except TimeoutError:
        raise ConnectFailed(connect_timed_out(port), Cause.CONNECT_TIMEOUT) from None


async def probe(
    kind: Probe,
    address: str,
    *,
    me: Identity,
    target: int | None,
    token: bytes | None,
    released: bool = False,
    source: str | None = None,
    timing: Timing = DEFAULT_TIMING,
    heard: Callable[[Identity], None] | None = None,
) -> ProbeResult:
    """``heard``: told the identity of a reply that passed the handshake."""
    if kind.kind is ProbeKind.DNS:
        return blind(None)
    if kind.kind is ProbeKind.ICMP:
        from agent.io.icmp import ping  # only the icmp probe pays for it

        reason = await ping(address, timeout=timing.connect_timeout)
        return blind(Failure(reason, Cause.NO_ECHO) if reason else None)
    port = kind.port or me.port
    stream: TCPStream | None = None
    try:
        # One deadline for the whole probe (a cancel scope is a fifth of a probe's CPU): the
        # connect's, then from the connection on the reply's.
        with anyio.move_on_after(timing.connect_timeout) as scope:
            stream = await _open(address, port, source)
            if not kind.says_hello:
                return blind(None)
            scope.deadline = anyio.current_time() + timing.handshake_timeout
            reply = await client_handshake(
                Channel(stream),
                me=me,
                role=Role.PROBE,
                token=token,
                expected_index=target,
                released=released,
                timeout=None,
            )
        # Not fail_after: on a loaded node the connect can complete after its deadline has
        # cancelled the scope; a new deadline does not undo that, and fail_after, seeing the
        # new deadline ahead, swallowed the cancellation as if the probe had ended (a crash).
        if scope.cancelled_caught:
            if stream is None:
                return Unreached(connect_timeout(port))
            return hello_failed(LATE)
        if heard is not None:
            heard(reply.identity)
        return replied(reply)
    except ConnectFailed as exc:
        return Unreached(Failure(str(exc), exc.cause))
    except HandshakeFailed as exc:
        return failed_handshake(exc.failure)
    except WireError as exc:
        return hello_failed(exc)
    finally:
        if stream is not None:
            stream.close_unwatched()  # this task was the only one to wait on it
