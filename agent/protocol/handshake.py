"""The opening of every connection: identities compared, and with a token, proven both ways.

Pure. Each side proves the shared token with an HMAC over the other side's fresh nonce, its own
nonce, its role and its identity: a recorded proof is useless against a new nonce (no replay) and a
server's proof can never pass as a client's (no reflection).

The client proves first, the server only once the client's proof checked
(``agent.io.channel``): anyone can connect to a server, and a proof sent to an unproven party
is something to test guesses of the token against offline. A client dials only addresses DNS
gives for the Job's pods, so the party that speaks first to strangers proves nothing to them.
"""

from __future__ import annotations

import enum

from agent.protocol.wire import EXIT_BARRIER, START_BARRIER, VERSION, Identity

__all__ = ["Match", "compare", "proof_for", "proof_ok", "proves_across", "proves_problem"]

_CONTEXT = f"peer-agent/{VERSION}".encode()


def _canonical(identity: Identity) -> bytes:
    parts = (
        identity.job,
        identity.uid,
        str(identity.index),
        str(identity.peers),
        str(identity.port),
        identity.instance,
        identity.barrier,
        "" if identity.exit_code is None else str(identity.exit_code),
    )
    return "\0".join(parts).encode()


def proof_for(token: bytes, *, role: str, their_nonce: str, my_nonce: str, me: Identity) -> str:
    import hashlib  # with a token only: hmac and hashlib load OpenSSL's hashes (~1.5 ms)
    import hmac

    message = b"\0".join(
        (_CONTEXT, role.encode(), their_nonce.encode(), my_nonce.encode(), _canonical(me))
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


def _barrier(namespace: str) -> str:
    return f"barrier {namespace!r}" if namespace else "the start barrier"


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
    if theirs.barrier != mine.barrier:  # another barrier of the same Job, not begun here yet
        return (
            Match.STRANGER,
            f"identity mismatch: {_barrier(theirs.barrier)}, expected {_barrier(mine.barrier)}",
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


def proves_across(mine: Identity, theirs: Identity, *, expected_index: int | None) -> bool:
    """Whether ``mine``, an exit barrier's hello, proves its token to ``theirs``: a pod of this
    Job (and run) whose exit barrier has not begun, its start barrier answering. A leader's
    exit hello stops that pod's workload (``agent.core.exitlead``), so it must be provable
    there; and proving to it gives away no more than proving to its exit barrier would (an
    impostor at an address DNS gave could claim that barrier as easily). Never to anyone else:
    another job, another run, another index, a named barrier."""
    if mine.barrier != EXIT_BARRIER or theirs.barrier != START_BARRIER:
        return False
    as_exit = Identity(
        theirs.job, theirs.uid, theirs.index, theirs.peers, theirs.port, barrier=EXIT_BARRIER
    )
    return compare(mine, as_exit, expected_index=expected_index)[0] is Match.SAME


def proves_problem(theirs: bool, *, token: bytes | None) -> str | None:
    """Why a peer whose hello says it proves a token (``theirs``) or not cannot be proven
    against ours, or None when both sides agree (both prove, or neither)."""
    if token is None:
        return "peer requires a token (set --token-file)" if theirs else None
    if not theirs:
        return "peer has no token (a pod without --token-file, or another job)"
    return None
