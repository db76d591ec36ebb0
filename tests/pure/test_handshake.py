"""Identity comparison and token proofs (pure)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from agent.protocol.handshake import Match, compare, proof_for, proof_ok, reply_problem
from agent.protocol.wire import Hello, Identity, Role

pytestmark = pytest.mark.timeout(10)

ME = Identity(job="example-job", uid="uid-1", index=0, peers=3, port=29300)


@pytest.mark.parametrize(
    ("them", "expected_index", "match", "says"),
    [
        pytest.param(replace(ME, index=1), 1, Match.SAME, "", id="same"),
        pytest.param(replace(ME, index=1, job="other"), 1, Match.STRANGER, "job", id="other-job"),
        pytest.param(replace(ME, index=1, uid="uid-2"), 1, Match.STRANGER, "uid", id="old-run"),
        pytest.param(replace(ME, index=2), 1, Match.STRANGER, "index 2, expected 1", id="stale-ip"),
        pytest.param(replace(ME, index=1, peers=4), 1, Match.DISAGREES, "peer count", id="peers"),
        pytest.param(replace(ME, index=1, port=1), 1, Match.DISAGREES, "port", id="port"),
        pytest.param(replace(ME, index=1, uid=""), 1, Match.STRANGER, "uid unset", id="uid-unset"),
    ],
)
def test_compare(them: Identity, expected_index: int, match: Match, says: str) -> None:
    got, reason = compare(ME, them, expected_index=expected_index)
    assert got == match
    assert says in reason


def test_proofs_bind_role_nonces_and_identity() -> None:
    token = b"secret"
    proof = proof_for(token, role="server", their_nonce="c1", my_nonce="s1", me=ME)
    ok = dict(role="server", my_nonce="c1", their_nonce="s1", them=ME)
    assert proof_ok(token, proof, **ok)  # type: ignore[arg-type]
    assert not proof_ok(b"other", proof, **ok)  # type: ignore[arg-type]
    assert not proof_ok(token, proof, **{**ok, "role": "client"})  # type: ignore[arg-type]
    assert not proof_ok(token, proof, **{**ok, "my_nonce": "c2"})  # type: ignore[arg-type]
    assert not proof_ok(token, proof, **{**ok, "them": replace(ME, index=1)})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("mine", "theirs", "problem"),
    [
        (None, None, None),
        (b"t", b"t", None),
        (None, b"t", "requires a token"),
        (b"t", None, "has no token"),
        (b"t", b"u", "proof is wrong"),
    ],
)
def test_reply_problem(mine: bytes | None, theirs: bytes | None, problem: str | None) -> None:
    proof = proof_for(theirs, role="server", their_nonce="c", my_nonce="s", me=ME) if theirs else ""
    got = reply_problem(Hello(ME, Role.REPLY, "s", proof=proof), token=mine, my_nonce="c")
    assert (got is None) if problem is None else (problem in (got or ""))
