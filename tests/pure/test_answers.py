"""Which answer counts (agent.core.answers): the decisions the runner's I/O tasks and the
in-memory cluster both call, so they are tested once, here, without a network."""

from __future__ import annotations

import pytest

from agent.core.answers import NameAttempt, dial_failed, failed_handshake, identity_failure
from agent.core.causes import Cause, Failure
from agent.core.inputs import Attempted, Disagreeing, Reached, Resolution, Unreached
from agent.protocol.instance import instance_id
from agent.protocol.wire import Identity

pytestmark = pytest.mark.timeout(10)

ME = Identity("job", "uid", 0, 3, 29300, "i0")
REFUSED = Unreached(Failure("connect to port 29300: refused", Cause.CONNECT_REFUSED))
TIMED_OUT = Unreached(Failure("connect to port 29300 timed out", Cause.CONNECT_TIMEOUT))


def test_the_first_address_that_answers_as_the_pod_settles_the_attempt() -> None:
    """A replaced pod's stale record comes first: it refuses; the next address answers and is
    the only one the attempt names (a stale record must not be handed to the workload)."""
    attempt = NameAttempt(1, "", Resolution(("10.0.0.9", "10.0.0.2", "10.0.0.3")))
    assert not attempt.probed("10.0.0.9", REFUSED)
    assert attempt.probed("10.0.0.2", Reached(1, "i1"))
    assert attempt.outcome() == Attempted(1, Reached(1, "i1"), "10.0.0.2", ("10.0.0.2",))


def test_another_instance_of_this_pods_own_name_does_not_count() -> None:
    """This pod's own name, with an old pod of its index still answering there: only its own
    instance counts, and the failure says why in a way hints read (OTHER_INSTANCE)."""
    attempt = NameAttempt(0, instance_id(2, 0), Resolution(("10.0.0.1",)))
    assert not attempt.probed("10.0.0.1", Reached(0, instance_id(1, 0)))
    failure = Failure("10.0.0.1: another instance of pod 0 answers", Cause.OTHER_INSTANCE)
    assert attempt.outcome() == Attempted(0, Unreached(failure))


def test_a_failure_at_the_one_address_of_a_name_names_that_address() -> None:
    """The timeout's line for a peer asked for by name says where it failed, also when its
    name has one address (the usual case: one pod per name)."""
    attempt = NameAttempt(1, "", Resolution(("10.0.0.2",)))
    assert not attempt.probed("10.0.0.2", REFUSED)
    failure = Failure("10.0.0.2: connect to port 29300: refused", Cause.CONNECT_REFUSED)
    assert attempt.outcome().result == Unreached(failure)


def test_a_pod_that_disagrees_settles_the_attempt_at_once() -> None:
    attempt = NameAttempt(2, "", Resolution(("10.0.0.3", "10.0.0.4")))
    assert attempt.probed("10.0.0.3", Disagreeing("peer count differs"))
    assert attempt.outcome().result == Disagreeing("peer count differs")


def test_every_address_failing_is_named_and_the_first_cause_stands_for_them() -> None:
    attempt = NameAttempt(1, "", Resolution(("10.0.0.2", "10.0.0.5")))
    assert not attempt.probed("10.0.0.2", TIMED_OUT)
    assert not attempt.probed("10.0.0.5", REFUSED)
    reason = "10.0.0.2: connect to port 29300 timed out; 10.0.0.5: connect to port 29300: refused"
    # both say the pod is at its addresses (busy, not up yet): its next attempt tries there
    at = ("10.0.0.2", "10.0.0.5")
    failure = Failure(reason, Cause.CONNECT_TIMEOUT)
    assert attempt.outcome() == Attempted(1, Unreached(failure), refused_at=at)


def test_a_name_that_does_not_resolve_is_the_attempts_failure() -> None:
    nxdomain = Failure("NXDOMAIN", Cause.NXDOMAIN)
    attempt = NameAttempt(1, "", Resolution(failure=nxdomain))
    assert attempt.outcome() == Attempted(1, Unreached(nxdomain))


@pytest.mark.parametrize(
    ("theirs", "cause", "result"),
    [
        pytest.param(Identity("job", "uid", 1, 3, 29300), None, None, id="the-peer"),
        pytest.param(Identity("job", "old", 1, 3, 29300), Cause.STRANGER, Unreached, id="old-run"),
        pytest.param(Identity("job", "uid", 2, 3, 29300), Cause.STRANGER, Unreached, id="index"),
        pytest.param(Identity("job", "uid", 1, 4, 29300), Cause.DISAGREES, Disagreeing, id="n"),
    ],
)
def test_a_reply_is_judged_by_its_identity(
    theirs: Identity, cause: Cause | None, result: type | None
) -> None:
    """Only a pod of this job and run, at the index asked for, counts; one that disagrees on
    the job aborts everyone, any other is skipped (a stale record)."""
    failure = identity_failure(ME, theirs, expected_index=1)
    assert (failure.cause if failure else None) == cause
    if failure is not None:
        assert isinstance(failed_handshake(failure), result or object)


def test_a_failed_dial_says_what_dns_and_each_address_said() -> None:
    nxdomain = Resolution(failure=Failure("NXDOMAIN", Cause.NXDOMAIN))
    assert dial_failed(nxdomain, []).reason == "NXDOMAIN"
    listed = Resolution(("10.0.0.1",))
    assert dial_failed(listed, ["10.0.0.1: refused"]).reason == "10.0.0.1: refused"
    assert dial_failed(Resolution(), []).reason == "no address"
