"""The two halves of the opening handshake, written once for both drivers.

Each is a coroutine over a channel that has ``say`` (send one message; WireError when the
connection broke) and ``receive`` (the next message; WireError when malformed, closed or late).
Neither awaits anything else, so the anyio driver (``agent.io.channel``) and the selectors driver
(``agent.io.sync``) run the very same code: as dnspython's ``_Resolution`` serves its two
resolvers, the protocol's decisions are made here once.
"""

from __future__ import annotations

import contextlib
import os
from typing import Protocol

from agent.core.answers import identity_failure
from agent.core.causes import Cause, Failure
from agent.core.timing import DEFAULT_TIMING
from agent.errors import WireError
from agent.protocol.handshake import proof_for, proof_ok, proves_across, proves_problem
from agent.protocol.wire import Hello, Identity, Message, Proof, Refuse, Role

__all__ = ["LATE", "HandshakeChannel", "HandshakeFailed", "client_handshake", "server_handshake"]

LATE = "no message before the deadline"
_REFUSED_OURS = "peer refused our token proof (a different token)"
_WRONG_THEIRS = "peer's token proof is wrong (a different token)"


class HandshakeChannel(Protocol):
    async def say(self, message: Message) -> None: ...
    async def receive(self, timeout: float | None) -> Message: ...


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


async def client_handshake(
    channel: HandshakeChannel,
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
    await channel.say(Hello(me, role, nonce, released, proves=token is not None))
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
        await channel.say(Proof(proof))
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
    channel: HandshakeChannel,
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
    await channel.say(Hello(me, Role.REPLY, nonce, released, proves=token is not None))
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
            await channel.say(Refuse("bad token"))
        raise HandshakeFailed(
            f"pod {hello.identity.index} sent a bad token proof", Cause.WRONG_TOKEN
        )
    proof = proof_for(token, role="server", their_nonce=hello.nonce, my_nonce=nonce, me=me)
    await channel.say(Proof(proof))
    return hello
