"""A connection carrying wire messages, and the two halves of the opening handshake.

Every receive has a deadline, so a peer that sends half a message and waits holds nothing.
"""

from __future__ import annotations

import contextlib
import os
import socket

import anyio
import anyio.abc
import anyio.lowlevel

from agent.core.answers import identity_failure
from agent.core.causes import Cause, Failure
from agent.core.timing import DEFAULT_TIMING, Timing
from agent.errors import WireError
from agent.io.lines import LineReader
from agent.io.tcp import TCPStream
from agent.protocol.handshake import proof_for, proof_ok, proves_across, proves_problem
from agent.protocol.wire import (
    MAX_MESSAGE,
    Hello,
    Identity,
    Message,
    Proof,
    Refuse,
    Role,
    decode,
    encode,
)

__all__ = [
    "LATE",
    "Channel",
    "HandshakeFailed",
    "client_handshake",
    "send_message",
    "server_handshake",
]

LATE = "no message before the deadline"
_REFUSED_OURS = "peer refused our token proof (a different token)"
_WRONG_THEIRS = "peer's token proof is wrong (a different token)"


class HandshakeFailed(Exception):
    """The other side is not (or not yet) a peer we can count; ``cause`` says how it differs."""

    def __init__(self, reason: str, cause: Cause = Cause.STRANGER) -> None:
        self.reason, self.cause = reason, cause
        super().__init__(reason)

    @property
    def failure(self) -> Failure:
        return Failure(self.reason, self.cause)


def _new_nonce() -> str:
    return os.urandom(16).hex()


def _socket_of(stream: anyio.abc.SocketStream) -> socket.socket:
    """TypedAttributeLookupError: a stream without a socket."""
    if isinstance(stream, TCPStream):
        return stream.sock
    return stream.extra(anyio.abc.SocketAttribute.raw_socket)


class Channel:
    def __init__(self, stream: anyio.abc.SocketStream) -> None:
        self.stream = stream
        self._reader = LineReader(stream)
        # Known, or read once, now: once the other side has reset the connection the socket no
        # longer knows its peer, and asking then raised out of the connection's task (the whole
        # agent).
        self._peer = stream.peer if isinstance(stream, TCPStream) else ""
        if not self._peer:
            try:
                self._peer = str(_socket_of(stream).getpeername()[0])
            except (anyio.TypedAttributeLookupError, OSError):
                self._peer = ""
        # Only agent.io.tcp's stream is a plain socket to write to directly (an asyncio transport
        # may hold bytes not sent yet, which a direct write would overtake).
        self._sock = stream.sock if isinstance(stream, TCPStream) else None

    @property
    def peer_address(self) -> str:
        """The other side's address; '' when it was gone before the connection was accepted."""
        return self._peer

    async def send(self, message: Message) -> None:
        await self.stream.send(encode(message))

    def write_nowait(self, data: bytes) -> bytes:
        """Hand encoded messages to the socket without waiting: returns what it did not take
        (all of it on a stream without a plain socket), for :meth:`write`. OSError: broken."""
        if self._sock is None:
            return data
        try:
            sent = self._sock.send(data)
        except BlockingIOError:
            return data
        return data[sent:]

    async def write(self, data: bytes) -> None:
        await self.stream.send(data)

    async def receive(self, timeout: float | None) -> Message:
        """The next message; WireError when malformed, oversized, closed or late. ``timeout``
        None: no deadline of its own (a session's, or one the caller has set)."""
        try:
            if timeout is None:  # a cancel scope costs more than the receive itself
                line = await self._reader.receive_until(b"\n", MAX_MESSAGE)
            else:
                with anyio.fail_after(timeout):
                    line = await self._reader.receive_until(b"\n", MAX_MESSAGE)
        except anyio.DelimiterNotFound:
            raise WireError(f"message over {MAX_MESSAGE} bytes") from None
        except TimeoutError:
            raise WireError(LATE) from None
        except (
            anyio.EndOfStream,
            anyio.IncompleteRead,
            anyio.BrokenResourceError,
            anyio.ClosedResourceError,
        ):
            raise WireError("connection closed") from None
        except OSError as exc:
            raise WireError(f"connection failed: {exc.strerror or exc}") from None
        return decode(line)

    def keepalive(self, timing: Timing) -> None:
        """Detect a peer that vanished without closing (a deleted pod) within
        ``timing.keepalive`` seconds (about ten)."""
        sock = _socket_of(self.stream)
        options = (
            ("TCP_KEEPIDLE", timing.keepalive_idle),
            ("TCP_KEEPINTVL", timing.keepalive_interval),
            ("TCP_KEEPCNT", timing.keepalive_count),
        )
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            for name, value in options:
                if hasattr(socket, name):
                    sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)
        except OSError:
            pass  # reset and closed already (EBADF): the session's first receive reports it

    async def aclose(self) -> None:
        await self.stream.aclose()


async def send_message(channel: Channel, message: Message) -> None:
    """A handshake's send: a connection that broke meanwhile is a WireError, like a receive's.
    A cancellation already called is honoured first: on a plain socket whose data is in,
    nothing else in a handshake waits, and a contact dropped for a newcomer while it waited to
    run (at 10,000 members) still replied, so its peer took a closed session for open."""
    await anyio.lowlevel.checkpoint_if_cancelled()
    try:
        await channel.send(message)
    except (anyio.BrokenResourceError, anyio.ClosedResourceError) as exc:
        raise WireError("connection closed") from exc
    except OSError as exc:
        raise WireError(f"connection failed: {exc.strerror or exc}") from None


async def client_handshake(
    channel: Channel,
    *,
    me: Identity,
    role: Role,
    token: bytes | None,
    expected_index: int | None,
    released: bool = False,
    timeout: float | None = DEFAULT_TIMING.handshake_timeout,
) -> Hello:
    """Say hello, check the reply (identity, whether it proves a token); with a token, prove
    ours first, then check the server's proof. Returns the reply. ``timeout``: for each of the
    server's messages; None: the caller's deadline bounds the whole handshake (the probe's
    does)."""
    nonce = _new_nonce()
    await send_message(channel, Hello(me, role, nonce, released, proves=token is not None))
    reply = await channel.receive(timeout)
    if isinstance(reply, Refuse):
        raise HandshakeFailed(f"refused: {reply.reason}", Cause.REFUSED_BY_PEER)
    if not isinstance(reply, Hello) or reply.role is not Role.REPLY:
        raise HandshakeFailed("not a peer-agent reply")
    if problem := proves_problem(reply.proves, token=token):
        raise HandshakeFailed(problem, Cause.WRONG_TOKEN)
    failure = identity_failure(me, reply.identity, expected_index=expected_index)
    if failure is not None and not proves_across(me, reply.identity, expected_index=expected_index):
        raise HandshakeFailed(failure.reason, failure.cause)  # nothing proven to a stranger
    if token is not None:
        proof = proof_for(token, role="client", their_nonce=reply.nonce, my_nonce=nonce, me=me)
        await send_message(channel, Proof(proof))
        _check_server_proof(await channel.receive(timeout), token, nonce, reply)
    if failure is not None:  # a pod not in the exit barrier yet: told, not counted
        raise HandshakeFailed(failure.reason, failure.cause)
    return reply


def _check_server_proof(answer: Message, token: bytes, my_nonce: str, reply: Hello) -> None:
    """HandshakeFailed unless ``answer`` is the server's proof, over our nonce."""
    if isinstance(answer, Refuse):  # it refused our proof
        raise HandshakeFailed(_REFUSED_OURS, Cause.WRONG_TOKEN)
    them = reply.identity
    if not isinstance(answer, Proof) or not proof_ok(
        token, answer.proof, role="server", my_nonce=my_nonce, their_nonce=reply.nonce, them=them
    ):
        raise HandshakeFailed(_WRONG_THEIRS, Cause.WRONG_TOKEN)


async def server_handshake(
    channel: Channel,
    *,
    me: Identity,
    token: bytes | None,
    released: bool,
    timeout: float | None = DEFAULT_TIMING.handshake_timeout,
) -> Hello:
    """Answer a hello; with a token, demand the client's proof, and only once it checked,
    prove ours. Returns the client's hello. ``timeout``: for each message of the client's."""
    hello = await channel.receive(timeout)
    if not isinstance(hello, Hello) or hello.role is Role.REPLY:
        raise WireError("expected a hello")
    nonce = _new_nonce()
    await send_message(channel, Hello(me, Role.REPLY, nonce, released, proves=token is not None))
    if token is None:
        return hello
    if not hello.proves:  # it will send no proof: do not wait for one
        raise HandshakeFailed(
            f"pod {hello.identity.index} has no token (no --token-file)", Cause.WRONG_TOKEN
        )
    answer = await channel.receive(timeout)
    if not isinstance(answer, Proof) or not proof_ok(
        token,
        answer.proof,
        role="client",
        my_nonce=nonce,
        their_nonce=hello.nonce,
        them=hello.identity,
    ):
        with contextlib.suppress(WireError):  # told if still there; refused either way
            await send_message(channel, Refuse("bad token"))
        raise HandshakeFailed(
            f"pod {hello.identity.index} sent a bad token proof", Cause.WRONG_TOKEN
        )
    proof = proof_for(token, role="server", their_nonce=hello.nonce, my_nonce=nonce, me=me)
    await send_message(channel, Proof(proof))
    return hello
