"""The checker itself (tests/sim/safety.py) on hand-made records of what a network saw.

One legal run of three pods passes; each way a run can break the guarantee (or the rules the
checker keeps beside it) is changed into it one at a time, and the checker names it.
"""

from __future__ import annotations

from agent.core.effects import Aborted, Released
from agent.core.outcome import ReleaseKind
from agent.core.reach import view_digest
from agent.protocol.instance import instance_id
from agent.protocol.wire import Ack, Arrive, Identity, Release
from tests.sim.safety import violations
from tests.sim.truth import Truth

A, B, C = (instance_id(1, 0), instance_id(2, 1), instance_id(3, 2))  # pods 0, 1, 2
VIEW = view_digest([A, B, C])
LINGER = 10.0


class Run:
    """A record written by hand: three pods up at t = 0 that hear each other at t = 1."""

    def __init__(self, *, instances: bool = True, hear: bool = True) -> None:
        self.t, self.truth = 0.0, Truth()
        for index, instance in enumerate((A, B, C)):
            self.start(index, instance, instances=instances)
        if hear:
            self.at(1.0)
            for a in (A, B, C):
                for b in (A, B, C):
                    self.truth.hello_heard(a, b, self.address(b), self.t)

    def at(self, t: float) -> Run:
        self.t = t
        return self

    def address(self, instance: str) -> str:
        return f"10.0.0.{self.truth.processes[instance].index}"

    def start(self, index: int, instance: str, *, job_pod: bool = True, **how: object) -> None:
        me = Identity("job", "uid", index, int(str(how.pop("peers", 3))), 29300, instance)
        linger = LINGER if index == 0 else None
        instances = bool(how.pop("instances", True))
        self.truth.start(me, job_pod=job_pod, linger=linger, now=self.t, instances=instances)

    def arrive(self, member: str, view: str = VIEW, *, server: str = A) -> str:
        """``member`` dials ``server`` and arrives with ``view``: the server's end."""
        end = f"{server}<-{member}@{self.t}"
        self.truth.session(end, client=member, server=server, address=self.address(member),
                           now=self.t)  # fmt: skip
        self.truth.delivered(end, Arrive(view), self.t)
        return end

    def decide(self, by: str = A, view: str = VIEW) -> None:
        self.truth.sent(by, Release(view), self.t)
        self.truth.verdict(by, Released(ReleaseKind.DECIDED), self.t)

    def released(self, instance: str, kind: ReleaseKind = ReleaseKind.BY_COORDINATOR) -> None:
        self.truth.verdict(instance, Released(kind), self.t)

    def legal(self) -> Run:
        """Both members arrive at 2, pod 0 decides at 3, they are released and ack at 4, and
        pod 0 leaves at 5."""
        ends = [self.at(2.0).arrive(B), self.arrive(C)]
        self.at(3.0).decide()
        self.at(4.0)
        for member, end in zip((B, C), ends, strict=True):
            self.released(member)
            self.truth.delivered(end, Ack(), self.t)
        self.at(5.0).truth.ended_wait(A, self.t)
        return self

    def problems(self) -> list[str]:
        return violations(3, self.truth)


def one(problems: list[str], words: str) -> None:
    assert len(problems) == 1 and words in problems[0], problems


def test_a_legal_run_passes() -> None:
    assert Run().legal().problems() == []


def test_a_legal_run_of_probes_that_cannot_tell_instances_apart_passes() -> None:
    """``icmp``, ``dns``, ``tcp:PORT``: views name indices alone, and so does the checker."""
    run = Run(instances=False)
    blind = view_digest(["", "", ""])
    run.at(2.0).arrive(B, blind)
    run.arrive(C, blind)
    run.at(3.0).decide(view=blind)
    run.at(4.0).released(B)
    run.released(C)
    assert run.problems() == []


def test_by_index_a_member_that_arrived_must_have_reached_some_instance_of_every_index() -> None:
    run = Run(instances=False, hear=False)
    pairs = [(a, b) for a in (A, B, C) for b in (A, B, C) if (a, b) != (B, C)]
    for a, b in pairs:
        run.truth.hello_heard(a, b, run.address(b), 1.0)
    blind = view_digest(["", "", ""])
    run.at(2.0).arrive(B, blind)
    run.arrive(C, blind)
    run.at(3.0).decide(view=blind)
    one(run.problems(), f"0:{A} released at 3.0000: 1:{B} had not reached any 2")


def test_an_arrival_on_a_session_that_ended_before_the_decision_does_not_count() -> None:
    run = Run()
    end = run.at(2.0).arrive(B)
    run.arrive(C)
    run.at(2.5).truth.lost(end, run.t)  # pod 1 crashed: its FIN reached pod 0
    run.at(3.0).decide()
    one(run.problems(), f"counting 1:{B}, whose arrival came on a session that had ended at 2.5")


def test_the_coordinator_closing_a_session_ends_its_arrival_too() -> None:
    run = Run()
    end = run.at(2.0).arrive(B)
    run.arrive(C)
    run.truth.closed(end, run.t)
    run.at(3.0).decide()
    assert any("had ended at 2.0" in p for p in run.problems())


def test_an_arrival_that_names_another_view_does_not_count() -> None:
    run = Run()
    run.at(2.0).arrive(B, view_digest([A, B, instance_id(9, 2)]))
    run.arrive(C)
    run.at(3.0).decide()
    one(run.problems(), f"counting 1:{B}, which had not arrived with that view")


def test_a_member_that_never_arrived_does_not_count() -> None:
    run = Run()
    run.at(2.0).arrive(C)
    run.at(3.0).decide()
    one(run.problems(), f"counting 1:{B}, which had not arrived")


def test_a_decision_on_instances_the_coordinator_never_reached() -> None:
    run = Run(hear=False)
    for a, b in [(B, A), (B, B), (B, C), (C, A), (C, B), (C, C), (A, A), (A, B)]:
        run.truth.hello_heard(a, b, run.address(b), 1.0)  # pod 0 never heard pod 2
    run.at(2.0).arrive(B)
    run.arrive(C)
    run.at(3.0).decide()
    assert f"0:{A} released at 3.0000 counting a view made of instances it had not reached" in (
        run.problems()
    )


def test_a_counted_member_must_have_reached_every_counted_instance() -> None:
    run = Run(hear=False)
    pairs = [(a, b) for a in (A, B, C) for b in (A, B, C) if (a, b) != (B, C)]
    for a, b in pairs:
        run.truth.hello_heard(a, b, run.address(b), 1.0)
    run.at(2.0).arrive(B)
    run.arrive(C)
    run.at(3.0).decide()
    assert f"0:{A} released at 3.0000: 1:{B} had not reached 2:{C}" in run.problems()


def test_a_release_with_no_decision_before_it() -> None:
    run = Run()
    run.at(2.0).released(B, ReleaseKind.ALREADY)
    one(run.problems(), f"1:{B} released at 2.0000; no coordinator had decided")


def test_a_late_joiner_must_have_reached_every_index_itself() -> None:
    run = Run().legal()
    late = instance_id(7, 1)
    run.at(6.0).start(1, late)
    run.truth.hello_heard(late, A, run.address(A), run.t)
    run.released(late, ReleaseKind.ALREADY)
    one(run.problems(), f"1:{late} released at 6.0000 before it reached [1, 2]")


def test_a_coordinator_leaving_before_the_acks_and_its_linger() -> None:
    run = Run()
    run.at(2.0).arrive(B)
    run.arrive(C)
    run.at(3.0).decide()
    run.at(3.5).truth.ended_wait(A, run.t)
    one(run.problems(), f"0:{A} left at 3.5000 before every ack and its linger")


def test_a_coordinator_may_leave_at_its_linger_without_the_acks() -> None:
    run = Run()
    run.at(2.0).arrive(B)
    run.arrive(C)
    run.at(3.0).decide()
    run.at(3.0 + LINGER).truth.ended_wait(A, run.t)
    assert run.problems() == []


def test_an_outsider_counted_in_a_view() -> None:
    run = Run(hear=False)
    stranger = instance_id(8, 2)
    run.start(2, stranger, job_pod=False)
    for a in (A, B, stranger):
        for b in (A, B, stranger):
            run.truth.hello_heard(a, b, f"10.99.0.{b[-1]}", 1.0)
    view = view_digest([A, B, stranger])
    run.at(2.0).arrive(B, view)
    run.arrive(stranger, view)
    run.at(3.0).decide(view=view)
    assert f"0:{A} released at 3.0000 counting 2:{stranger}, no Job pod" in run.problems()


def test_releases_naming_two_views() -> None:
    run = Run().legal()
    run.truth.sent(A, Release(view_digest([A, B, instance_id(9, 2)])), 6.0)
    assert f"0:{A} sent Releases naming 2 different views" in run.problems()


def test_an_abort_while_every_pod_of_the_job_agrees() -> None:
    run = Run()
    run.start(1, instance_id(8, 1), job_pod=False, peers=4)  # an outsider disagrees
    run.at(2.0).truth.verdict(B, Aborted("peer count differs"), run.t)
    one(run.problems(), f"1:{B} aborted although every pod of the Job agrees")


def test_an_abort_when_a_pod_of_the_job_disagrees_is_its_right() -> None:
    run = Run()
    run.start(1, instance_id(8, 1), peers=4)
    run.at(2.0).truth.verdict(B, Aborted("peer count differs"), run.t)
    assert run.problems() == []


def test_an_admitted_current_session_cut_before_the_verdict() -> None:
    run = Run()
    end = run.at(2.0).arrive(B)
    run.at(2.5).truth.closed(end, run.t)
    assert f"0:{A} closed the session of 1:{B} at 2.5000: admitted" in " ".join(run.problems())


def test_closing_an_older_session_of_a_member_is_no_cut() -> None:
    run = Run()
    old = run.at(2.0).arrive(B)
    run.at(2.2).arrive(B)
    run.truth.closed(old, run.t)
    run.arrive(C)
    run.at(3.0).decide()
    assert run.problems() == []
