"""The opening of every connection: identities compared, and with a token, proven both ways.

Pure. Each side proves the shared token with an HMAC over the other side's fresh nonce, its own
nonce, its role and its identity: a recorded proof is useless against a new nonce (no replay) and a
server's proof can never pass as a client's (no reflection).
"""

from __future__ import annotations

import enum

from agent.protocol.wire import Hello, Identity

__all__ = ["Match", "compare", "proof_for", "proof_ok", "reply_problem"]


def _canonical(identity: Identity) -> bytes:
    parts = (
        identity.job,
        identity.uid,
        str(identity.index),
        str(identity.peers),
        str(identity.port),
        identity.instance,
    )
    return "\0".join(parts).encode()


def proof_for(token: bytes, *, role: str, their_nonce: str, my_nonce: str, me: Identity) -> str:
    import hashlib  # with a token only: hmac and hashlib load OpenSSL's hashes (~1.5 ms)
    import hmac

    message = b"\0".join(
        (b"peer-agent/1", role.encode(), their_nonce.encode(), my_nonce.encode(), _canonical(me))
    )
    return hmac.new(token, message, hashlib.sha256).hexdigest()


def proof_ok(
    token: bytes, proof: str, *, role: str, my_nonce: str, their_nonce: str, them: Identity
) -> bool:
    import hmac

    expected = proof_for(token, role=role, their_nonce=my_nonce, my_nonce=their_nonce, me=them)
    return hmac.compare_digest(expected.encode(), proof.encode())


class Match(enum.Enum):
    """How a peer's stated identity compares with ours."""

    SAME = "same"
    STRANGER = "stranger"  # another job, or another run of it: a wrong pod at a stale address
    DISAGREES = "disagrees"  # same job, other peer count or port: a configuration error


def compare(mine: Identity, theirs: Identity, *, expected_index: int | None) -> tuple[Match, str]:
    """(match, reason) for ``theirs`` as seen by ``mine``."""
    if theirs.job != mine.job:
        return Match.STRANGER, f"identity mismatch: job {theirs.job!r}, expected {mine.job!r}"
    if theirs.uid != mine.uid:
        # One template makes every pod of a Job: a different uid, or one unset, is another run.
        return (
            Match.STRANGER,
            f"identity mismatch: job uid {theirs.uid or 'unset'}, expected {mine.uid or 'unset'}",
        )
    if expected_index is not None and theirs.index != expected_index:
        return (
            Match.STRANGER,
            f"identity mismatch: index {theirs.index}, expected {expected_index}",
        )
    for name, a, b in (("peer count", theirs.peers, mine.peers), ("port", theirs.port, mine.port)):
        if a != b:
            return (
                Match.DISAGREES,
                f"{name} differs: pod {theirs.index} has {a}, pod {mine.index} has {b}",
            )
    return Match.SAME, ""


def reply_problem(hello: Hello, *, token: bytes | None, my_nonce: str) -> str | None:
    """Why a server's reply hello does not prove the token, or None when it does."""
    if token is None:
        return "peer requires a token (set --token-file)" if hello.proof else None
    if not hello.proof:
        return "peer has no token (a pod without --token-file, or another job)"
    if not proof_ok(
        token,
        hello.proof,
        role="server",
        my_nonce=my_nonce,
        their_nonce=hello.nonce,
        them=hello.identity,
    ):
        return "peer's token proof is wrong (a different token)"
    return None
