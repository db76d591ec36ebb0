"""What a waiting agent tells its user, from the cores' state alone: why each peer is missing, the
progress line, the timeout's message and the outcome."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from agent.config.parse import build_config
from agent.core.causes import Cause, Failure
from agent.core.discovery import ByName, ByService, Discovery
from agent.core.inputs import Resolution
from agent.core.reach import Reach
from agent.core.roles import Coordinator, Member
from agent.core.status import Status
from agent.core.timing import DEFAULT_TIMING
from agent.exitcodes import ExitCode
from agent.protocol.instance import instance_id
from agent.protocol.wire import Arrive, Hello, Identity, Role
from agent.topology.podfiles import PodFacts

pytestmark = pytest.mark.timeout(10)

RESOLV = "search default.svc.cluster.local svc.cluster.local\nnameserver 10.96.0.10\n"
HOSTS = "10.0.0.1\texample-job-0.headless-svc.default.svc.cluster.local\texample-job-0\n"
POD = PodFacts(hostname="example-job-0", hosts=HOSTS, resolv_conf=RESOLV)


def _status(peers: int, *, bulk: bool = True, answer: list[str] | None = None) -> Status:
    config = build_config("wait", {"peers": str(peers), "index": "0"}, POD)
    reach = Reach(peers, now=0.0, rand=lambda: 0.5, scheduled={0} if bulk else None)
    discovery: Discovery = ByName(reach)
    if bulk:
        discovery = ByService(reach, now=0.0, rand=lambda: 0.5, timing=DEFAULT_TIMING)
    if answer is not None:
        discovery.take_due(0.0)
        discovery.answered(Resolution(tuple(answer)), 0.0)
    return Status(config, reach, discovery, None)


WRONG = "peer's token proof is wrong (a different token)"
REFUSED = "connect to port 29300: refused"
WRONG_TOKEN = Failure(WRONG, Cause.WRONG_TOKEN)
NOBODY = Failure(REFUSED, Cause.CONNECT_REFUSED)


def _sweep(status: Status) -> ByService:
    """Bulk discovery's state: the cases that use it run with the Service (see _status)."""
    assert isinstance(status.discovery, ByService)
    return status.discovery


def _token_refused_then_left_listed(s: Status) -> None:
    service = _sweep(s)
    service.book.claim("10.0.0.2")
    service.probed("10.0.0.2", WRONG_TOKEN)
    service.book.claim("10.0.0.2")
    service.probed("10.0.0.2", NOBODY)


def _token_refused_then_left_by_name(s: Status) -> None:
    s.reach.schedule([1])
    s.reach.start_due(0.0)
    s.reach.failed(1, WRONG_TOKEN, 0.0)
    s.reach.start_due(9.0)
    s.reach.failed(1, NOBODY, 9.0)


def _name_gave_nxdomain(s: Status) -> None:
    s.reach.schedule([1])
    s.reach.start_due(0.0)
    s.reach.failed(1, Failure("NXDOMAIN", Cause.NXDOMAIN), 0.0)


REASONS: list[tuple[str, Callable[[Status], object], int, str]] = [
    (
        "the Service name fails",
        lambda s: _sweep(s).answered(
            Resolution(failure=Failure("SERVFAIL", Cause.DNS_FAILED)), 1.0
        ),
        1,
        "SERVFAIL",
    ),
    (
        "not yet in the Service's answer",
        lambda s: None,
        1,
        "not in DNS: not among the 2 addresses of the Service",
    ),
    (
        "listed addresses that did not answer as peers are named",
        lambda s: _sweep(s).probed("10.0.0.2", NOBODY),
        1,
        "not found at the 2 addresses of the Service; "
        "not answering as a peer: 10.0.0.2 (connect to port 29300: refused)",
    ),
    (
        "an address no longer listed is not named",
        lambda s: _sweep(s).probed("10.0.0.3", NOBODY),
        1,
        "not in DNS: not among the 2 addresses of the Service",
    ),
    (
        "a listed address that refused the token, then left, still says so",
        _token_refused_then_left_listed,
        1,
        "not found at the 2 addresses of the Service; not answering as a peer: "
        f"10.0.0.2 ({REFUSED}; earlier: {WRONG})",
    ),
    (
        "a peer asked for by name that refused the token, then left, still says so",
        _token_refused_then_left_by_name,
        1,
        f"{REFUSED}; earlier: {WRONG}",
    ),
    (
        "a peer asked for by name says what its name gave",
        _name_gave_nxdomain,
        1,
        "NXDOMAIN",
    ),
]


@pytest.mark.parametrize(
    ("prepare", "index", "expected"), [r[1:] for r in REASONS], ids=[r[0] for r in REASONS]
)
def test_why_a_peer_is_missing(
    prepare: Callable[[Status], object], index: int, expected: str
) -> None:
    status = _status(3, answer=["10.0.0.1", "10.0.0.2"])
    prepare(status)
    assert status.reason(index) == expected


@pytest.mark.parametrize("bulk", [True, False], ids=["found-by-the-service", "asked-by-name"])
def test_a_token_mismatch_stays_the_cause_after_the_peer_left(bulk: bool) -> None:
    """Two pods with different tokens both time out; the one that leaves first only refuses
    connections after. The other's timeout still blames the token, not "nobody listens"."""
    status = _status(2, bulk=bulk, answer=["10.0.0.1", "10.0.0.2"])
    status.reach.start_due(0.0)
    status.reach.succeeded(0, "10.0.0.1", 0.1)
    for at, failure in enumerate([WRONG_TOKEN, NOBODY]):
        if isinstance(status.discovery, ByService):
            status.discovery.book.claim("10.0.0.2")
            status.discovery.probed("10.0.0.2", failure)
        else:
            status.reach.start_due(at * 10.0)
            status.reach.failed(1, failure, at * 10.0)
    assert status.cause(1) == Cause.WRONG_TOKEN
    error = status.timeout()
    # exit 4, as DESIGN.md's table says for a refused token: retrying cannot help
    assert error.exit_code == ExitCode.ABORTED
    assert "exit 4: the pods do not share one token" in str(error)
    hints = error.hints
    assert any("do not share the token" in h for h in hints), hints
    assert not any("nobody listens" in h for h in hints), hints
    assert "nobody listens" not in status.progress(30.0).message


def test_the_progress_line_counts_and_names_at_most_eight() -> None:
    status = _status(12, bulk=False)
    status.reach.start_due(0.0)
    status.reach.succeeded(0, "10.0.0.1", 0.1)
    for i in range(1, 12):
        status.reach.failed(i, NOBODY, 0.1)
    event = status.progress(7.4)
    assert event.message.startswith("waiting 7s: 1/12 peers reached; missing: example-job-1 (")
    assert ", … 3 more; hint: the peers resolve" in event.message
    assert event.fields["missing"] == list(range(1, 12))


def test_once_all_are_reached_the_coordinator_names_who_has_not_arrived() -> None:
    status = _status(2, bulk=False)
    status.reach.start_due(0.0)
    for i in range(2):
        status.reach.succeeded(i, f"10.0.0.{i + 1}", 0.1)
    coordinator = Coordinator(Identity("example-job", "", 0, 2, 29300, "x"))
    coordinator.reached_all(status.reach.view(), 0.2)
    status = Status(status.config, status.reach, status.discovery, coordinator)
    [(index, why)] = status.missing()
    assert index == 1 and why.startswith("barrier: ")
    error = status.timeout()
    assert str(error) == "timed out after 600s; all 2 peers reached; the barrier waits for 1"
    assert error.missing == (
        "example-job-1.headless-svc.default.svc.cluster.local: barrier: not connected",
    )


def _reached(status: Status, indices: range) -> None:
    status.reach.start_due(0.0)
    for i in indices:
        status.reach.succeeded(i, f"10.0.0.{i + 1}", 0.1)


def _some_missing(status: Status) -> Status:
    _reached(status, range(1))
    for i in (1, 2):
        status.reach.failed(i, NOBODY, 0.1)
    return status


def _coordinator_with(status: Status, *, connected: bool) -> Status:
    """Every peer reached at the coordinator; member 2 arrived, member 1 connected or not."""
    _reached(status, range(3))
    coordinator = Coordinator(Identity("example-job", "", 0, 3, 29300, "0" * 16))
    coordinator.reached_all(status.reach.view(), 0.2)
    for index in (1, 2) if connected else (2,):
        member = Identity("example-job", "", index, 3, 29300, instance_id(index, 0))
        coordinator.joined(index, Hello(member, Role.MEMBER, ""), 0.3)  # conn = its index
    coordinator.received(2, Arrive(status.reach.view()), 0.4)
    return Status(status.config, status.reach, status.discovery, coordinator)


def _member(status: Status) -> Status:
    _reached(status, range(3))
    return Status(status.config, status.reach, status.discovery, Member(now=0.0, rand=lambda: 0.5))


#: (what the pod's cores hold, the progress line after "waiting 7s: ", the line's JSON fields)
PROGRESS: list[tuple[str, Callable[[Status], Status], str, dict[str, object]]] = [
    (
        "peers-missing",
        _some_missing,
        "1/3 peers reached; missing: example-job-1 (connect to port 29300: refused), "
        "example-job-2 (connect to port 29300: refused); hint: the peers resolve",
        {"reached": 1, "missing": [1, 2], "waiting_for": "peers"},
    ),
    (
        "coordinator-a-member-not-connected",
        lambda s: _coordinator_with(s, connected=False),
        "all 3 peers reached; waiting for the barrier: example-job-1 (not connected)",
        {"reached": 3, "missing": [1], "waiting_for": "barrier"},
    ),
    (
        "coordinator-a-member-connected",
        lambda s: _coordinator_with(s, connected=True),
        "all 3 peers reached; waiting for the barrier: example-job-1 (connected, not arrived yet)",
        {"reached": 3, "missing": [1], "waiting_for": "barrier"},
    ),
    (
        "member",
        _member,
        "all 3 peers reached; waiting for the barrier: example-job-0 (not connected to the "
        "coordinator yet)",
        {"reached": 3, "missing": [0], "waiting_for": "barrier"},
    ),
]


@pytest.mark.parametrize(
    ("prepare", "said", "fields"), [p[1:] for p in PROGRESS], ids=[p[0] for p in PROGRESS]
)
def test_the_progress_line_says_what_the_wait_is_for(
    prepare: Callable[[Status], Status], said: str, fields: dict[str, object]
) -> None:
    """Missing peers, or once all are reached what the barrier waits for: never "all reached"
    and "missing" in one line."""
    line = prepare(_status(3, bulk=False)).progress(7.4)
    assert line.message.startswith(f"waiting 7s: {said}"), line.message
    assert not ("all 3 peers reached" in line.message and "missing" in line.message)
    assert line.fields == fields


def test_the_timeout_lists_every_missing_peer_by_name_with_hints() -> None:
    status = _status(3)
    nxdomain = Failure("NXDOMAIN", Cause.NXDOMAIN)
    _sweep(status).answered(Resolution(failure=nxdomain), 1.0)  # the Service's name, its own:
    status.reach.start_due(0.0)
    status.reach.failed(0, nxdomain, 1.0)
    error = status.timeout()
    assert error.exit_code == ExitCode.TIMEOUT
    assert str(error) == "timed out after 600s; 3 peer(s) missing"
    assert error.missing == tuple(
        f"example-job-{i}.headless-svc.default.svc.cluster.local: NXDOMAIN" for i in range(3)
    )
    [hint] = error.hints
    assert "publishNotReadyAddresses: true" in hint


def test_the_outcome_lists_every_peer_with_the_address_it_answered_at() -> None:
    status = _status(2, bulk=False)
    outcome = status.outcome(1.5, {1: ("10.0.0.2",)})
    assert outcome.how == "reached all peers" and outcome.elapsed == 1.5
    assert [(p.index, p.hostname, p.addresses) for p in outcome.peers] == [
        (0, "example-job-0", ()),
        (1, "example-job-1", ("10.0.0.2",)),
    ]
