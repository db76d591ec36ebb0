"""Identity comparison and token proofs (pure)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from agent.protocol.handshake import Match, compare, proof_for, proof_ok, proves_problem
from agent.protocol.wire import EXIT_BARRIER, Identity, named_barrier

pytestmark = pytest.mark.timeout(10)

ME = Identity(job="example-job", uid="uid-1", index=0, peers=3, port=29300)


@pytest.mark.parametrize(
    ("them", "expected_index", "verdict", "says"),
    [
        pytest.param(replace(ME, index=1), 1, Match.SAME, "", id="same"),
        pytest.param(replace(ME, index=1, job="other"), 1, Match.STRANGER, "job", id="other-job"),
        pytest.param(replace(ME, index=1, uid="uid-2"), 1, Match.STRANGER, "uid", id="old-run"),
        pytest.param(replace(ME, index=2), 1, Match.STRANGER, "index 2, expected 1", id="stale-ip"),
        pytest.param(replace(ME, index=1, peers=4), 1, Match.DISAGREES, "peer count", id="peers"),
        pytest.param(replace(ME, index=1, port=1), 1, Match.DISAGREES, "port", id="port"),
        pytest.param(replace(ME, index=1, uid=""), 1, Match.STRANGER, "uid unset", id="uid-unset"),
        pytest.param(
            replace(ME, index=1, barrier=EXIT_BARRIER, exit_code=0),
            1,
            Match.STRANGER,
            "barrier 'exit', expected the start barrier",
            id="exit-barrier",
        ),
        pytest.param(
            replace(ME, index=1, barrier=named_barrier("ckpt")),
            1,
            Match.STRANGER,
            "barrier 'named/ckpt'",
            id="named-barrier",
        ),
        pytest.param(
            replace(ME, index=1, exit_code=3, instance="0" * 16 + "-" + "1" * 8),
            1,
            Match.SAME,
            "",
            id="instance-and-code-are-not-compared",
        ),
    ],
)
def test_compare(them: Identity, expected_index: int, verdict: Match, says: str) -> None:
    got, reason = compare(ME, them, expected_index=expected_index)
    assert got == verdict
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
    for changed in (
        replace(ME, barrier=EXIT_BARRIER, exit_code=0),
        replace(ME, barrier=named_barrier("x")),
        replace(ME, instance="0" * 16 + "-" + "1" * 8),
    ):  # every field a peer states is covered: a relay cannot change an exit code
        assert not proof_ok(token, proof, **{**ok, "them": changed})  # type: ignore[arg-type]
    exited = replace(ME, barrier=EXIT_BARRIER, exit_code=0)
    proof = proof_for(token, role="server", their_nonce="c1", my_nonce="s1", me=exited)
    assert not proof_ok(token, proof, **{**ok, "them": replace(exited, exit_code=137)})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("mine", "theirs", "problem"),
    [
        (None, False, None),
        (b"t", True, None),
        (None, True, "requires a token"),
        (b"t", False, "has no token"),
    ],
)
def test_proves_problem(mine: bytes | None, theirs: bool, problem: str | None) -> None:
    """Both sides prove a token, or neither: said from the other side's hello alone."""
    got = proves_problem(theirs, token=mine)
    assert (got is None) if problem is None else (problem in (got or ""))
