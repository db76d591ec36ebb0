"""Named barrier scenarios over the in-memory cluster: who is released or aborted, when, and why.

Times are simulated seconds (the whole file runs in about a second of real time). Every scenario
also checks safety: :meth:`Cluster.unsafe` (nobody released before each index had reached all N
peers, and the coordinator never left before every ack or its linger bound).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest

from agent.core.effects import Close, Dial, Released, Send
from agent.core.outcome import ReleaseKind
from agent.core.roles import Coordinator, Member
from agent.protocol.wire import Ack, Arrive, Hello, Identity, Message, Proof, Release, Role
from tests.sim.checks import (
    BOUND,
    LINGER,
    assert_aborted,
    assert_coordinator_left,
    assert_released,
    once,
    start,
)
from tests.sim.cluster import CONNECT_TIMEOUT, KEEPALIVE, Cluster, Fate

pytestmark = pytest.mark.timeout(60)


# --- start orders and skews ---------------------------------------------------------------------
SKEWS = {"together": 0.0, "50ms-apart": 0.05, "1s-apart": 1.0, "5min-apart": 300.0}


@pytest.mark.parametrize("skew", SKEWS.values(), ids=SKEWS.keys())
@pytest.mark.parametrize(
    "order", list(itertools.permutations(range(3))), ids=lambda o: "order-" + "".join(map(str, o))
)
def test_every_start_order(order: tuple[int, ...], skew: float) -> None:
    c = Cluster(3, seed=int("".join(map(str, order))))
    start(c, {index: k * skew for k, index in enumerate(order)})
    last = 2 * skew
    c.run_until(last + BOUND + 1)
    current = assert_released(c, after=last, by=last + BOUND)
    coordinator = current[0]
    assert coordinator.exited and coordinator.left_at is not None
    assert coordinator.left_at <= last + BOUND  # every ack came: no need to linger


SKEW_TABLE = [
    pytest.param(3, [600.0, 0.0, 0.0], 0.0, id="coordinator-10min-late"),
    pytest.param(5, [0.0, 0.0, 0.0, 0.0, 599.0], 0.0, id="one-member-10min-late"),
    pytest.param(8, [0.7 * i for i in range(8)], 0.0, id="n8-staggered-700ms"),
    pytest.param(8, [0.7 * (7 - i) for i in range(8)], 0.0, id="n8-reverse-staggered"),
    pytest.param(8, [0.0001 * i for i in range(8)], 0.0, id="n8-within-1ms"),
    pytest.param(3, [0.0, 0.1, 0.2], 3.0, id="dns-published-3s-after-start"),
]


@pytest.mark.parametrize("n, times, dns_delay", SKEW_TABLE)
def test_start_skews(n: int, times: list[float], dns_delay: float) -> None:
    c = Cluster(n, seed=n, dns_delay=dns_delay)
    start(c, dict(enumerate(times)))
    last = max(times) + dns_delay
    c.run_until(last + BOUND + 1)
    assert_released(c, after=last, by=last + BOUND)


# --- the session lost at each step --------------------------------------------------------------
def member_sends(kind: type[Message], fate: Fate) -> Callable[[Cluster, int], None]:
    return lambda c, i: setattr(c, "on_send", once(kind, fate, sender=i))


def member_gets(kind: type[Message], fate: Fate) -> Callable[[Cluster, int], None]:
    return lambda c, i: setattr(c, "on_send", once(kind, fate, receiver=i))


def reset_while_waiting(c: Cluster, i: int) -> None:
    c.at(0.5, lambda: c.reset_sessions(i))  # index 2 starts at 1.0: nobody has arrived yet


#: (fault, does the coordinator have to wait out its linger for an ack that never comes?)
SESSION_LOSS = [
    pytest.param(reset_while_waiting, False, id="while-waiting"),
    pytest.param(member_sends(Arrive, Fate.LOST), False, id="arrive-lost"),
    pytest.param(member_sends(Arrive, Fate.AFTER), False, id="after-arrive"),
    pytest.param(member_gets(Release, Fate.LOST), False, id="release-lost"),
    pytest.param(member_gets(Release, Fate.AFTER), True, id="after-release-before-ack"),
    pytest.param(member_sends(Ack, Fate.LOST), True, id="ack-lost"),
]


@pytest.mark.parametrize("mode", ["wait", "sidecar"])
@pytest.mark.parametrize("member", [1, 2])
@pytest.mark.parametrize("fault, lingers", SESSION_LOSS)
def test_session_lost(
    fault: Callable[[Cluster, int], None], lingers: bool, member: int, mode: str
) -> None:
    c = Cluster(3, seed=member, mode=mode)
    start(c, {0: 0.0, 1: 0.0, 2: 1.0})
    fault(c, member)
    c.run_until(1.0 + BOUND + LINGER + 1)
    coordinator = assert_released(c, after=1.0, by=1.0 + BOUND)[0]
    assert_coordinator_left(coordinator, lingers=lingers)


# --- restarts before the release ----------------------------------------------------------------
RESTART_HOW = {
    "same-pod": dict(new_pod=False),
    "new-pod": dict(new_pod=True),
    "half-open-new-pod": dict(new_pod=True, half_open=True),
}


@pytest.mark.parametrize("how", RESTART_HOW.values(), ids=RESTART_HOW.keys())
@pytest.mark.parametrize("when", ["before-others-start", "after-arriving"])
@pytest.mark.parametrize("who", [0, 1, 2])
def test_restart_before_release(who: int, when: str, how: dict[str, bool]) -> None:
    """``who`` restarts before the others start, or after everyone but 2 has arrived (2 cannot
    reach 1 until t=3, which holds the barrier while ``who`` restarts)."""
    c = Cluster(3, seed=who)
    if when == "before-others-start":
        start(c, {who: 0.0})
        start(c, {i: 1.0 for i in range(3) if i != who})
        c.at(0.5, lambda: c.restart(who, **how))
        healed = 1.0
    else:
        start(c, {0: 0.0, 1: 0.0, 2: 0.0})
        c.blocked.add((2, 1))
        c.at(2.0, lambda: c.restart(who, **how))
        c.at(3.0, c.blocked.clear)
        healed = 3.0 + CONNECT_TIMEOUT  # a probe sent into the partition times out first
    # Members notice a coordinator that vanished without a word only by keepalive.
    slow = KEEPALIVE if who == 0 and how.get("half_open") else 0.0
    c.run_until(healed + slow + BOUND + LINGER)
    current = assert_released(c, after=min(healed, 3.0), by=healed + slow + BOUND)
    first = min(n.verdict_at or 1e9 for n in c.nodes)
    # An arrival counts only while its session is open: every instance alive at the release
    # had itself reached everyone (the old instances' sessions were closed or replaced).
    assert all(n.reach_done_at is not None and n.reach_done_at <= first for n in current.values())


@pytest.mark.parametrize("new_pod", [True, False], ids=["new-pod", "same-pod"])
def test_an_arrival_dies_with_its_session(new_pod: bool) -> None:
    """Member 1 arrives, then its agent dies and is back only at t=8; meanwhile 2 arrives (it had
    reached 1 before). Nobody may be released while 1 is down: its arrival went with its session.
    (A pod that vanishes half-open still counts until the keepalive notices; it had arrived.)"""
    c = Cluster(3, seed=5)
    start(c, {0: 0.0, 1: 0.0, 2: 0.0})
    c.blocked.add((2, 0))  # 2 reaches 1 at once, index 0 only once the partition heals
    c.at(1.0, c.blocked.clear)
    c.run_until(0.5)
    assert c.current()[1].reach_done_at is not None
    c.restart(1, gap=7.5, new_pod=new_pod)
    c.run_until(8.0 + BOUND + LINGER)
    assert_released(c, after=8.0, by=8.0 + BOUND)


def test_coordinator_replaced_after_members_arrived_old_address_lingers() -> None:
    """The coordinator's pod vanishes (half-open) and is replaced while its old record stays."""
    c = Cluster(3, seed=7)
    start(c, {0: 0.0, 1: 0.0, 2: 0.0})
    c.blocked.add((0, 2))  # the coordinator alone cannot reach 2: the members have arrived
    c.run_until(2.0)
    assert all(n.member is not None and n.member.view is not None for n in c.nodes[1:])
    c.crash(0, half_open=True)
    c.blocked.clear()
    c.start(0, keep_old=True)  # a dead address listed first: connects to it are refused
    c.run_until(2.0 + KEEPALIVE + BOUND + LINGER)
    assert_released(c, after=2.0, by=2.0 + KEEPALIVE + BOUND)


# --- agreement ----------------------------------------------------------------------------------
# Includes the orders where the odd member starts second, finds the first, aborts, and index 0
# starts last: the odd one lingers (Timing.abort_linger) so that index 0 still meets it.
MISMATCH = [
    pytest.param(
        order,
        odd,
        peers,
        id=f"order-{''.join(map(str, order))}-pod{odd}-says-{peers}",
    )
    for order in itertools.permutations(range(3))
    for odd, peers in ((0, 4), (1, 4), (2, 4), (1, 2))
]


@pytest.mark.parametrize("order, odd, peers", MISMATCH)
def test_mismatched_peer_count_aborts_everyone(
    order: tuple[int, ...], odd: int, peers: int
) -> None:
    c = Cluster(3, seed=odd)
    for k, index in enumerate(order):
        start(c, {index: 0.5 * k}, **({"peers": peers} if index == odd else {}))
    c.run_until(1.0 + BOUND + LINGER)
    assert_aborted(c, "peer count")


@pytest.mark.parametrize("stale", [0, 1, 2])
def test_pod_of_another_run_is_never_counted(stale: int) -> None:
    """A leftover pod of another run of the job (other uid) answers at ``stale``'s name."""
    c = Cluster(3, seed=stale)
    stranger = c.start(stale, uid="uid-of-the-previous-run")
    start(c, {i: 0.0 for i in range(3) if i != stale})
    c.run_until(5.0)
    assert not any(n.verdict for n in c.nodes), c.describe()
    if stale != 0:
        coordinator = c.current()[0].coordinator
        assert coordinator is not None and (stale, "not connected") in coordinator.waiting_for()
    c.at(5.0, lambda: c.start(stale, keep_old=True))  # the right pod: its name has 2 addresses
    c.run_until(5.0 + BOUND + LINGER)
    assert_released(c, after=5.0, by=5.0 + BOUND)
    assert stranger.verdict is None and stranger.reach_done_at is None


def test_a_pod_without_the_job_uid_is_never_counted() -> None:
    """One template makes every pod of a Job, so a pod without the uid is not one of them (a
    leftover of a deployment without the Downward API): it is never counted, nobody aborts."""
    c = Cluster(3)
    start(c, {0: 0.0, 2: 0.0})
    stranger = c.start(1, uid="")
    c.run_until(1.0 + BOUND + LINGER)
    assert not any(n.verdict for n in c.nodes), c.describe()
    assert stranger.reach_done_at is None


# --- late joiners (sidecar) ---------------------------------------------------------------------
#: (who restarts after the release, can it reach index 0, how it must learn of the release)
LATE_JOINERS = [
    pytest.param(0, True, "already released", id="coordinator-from-a-peer-flag"),
    pytest.param(1, True, "", id="member-either-way"),
    pytest.param(2, True, "", id="other-member-either-way"),
]


@pytest.mark.parametrize("new_pod", [True, False], ids=["new-pod", "same-pod"])
@pytest.mark.parametrize("who, sees_0, how", LATE_JOINERS)
def test_late_joiner_is_released_at_once(who: int, sees_0: bool, how: str, new_pod: bool) -> None:
    c = Cluster(3, seed=who, mode="sidecar")
    start(c, {0: 0.0, 1: 0.0, 2: 0.0})
    c.run_until(3.0)
    assert all(n.left_at is not None for n in c.nodes)  # all ready, still serving
    if not sees_0:
        c.blocked.add((who, 0))
    c.restart(who, new_pod=new_pod)
    c.run_until(3.0 + BOUND + LINGER)
    joiner = c.current()[who]
    assert isinstance(joiner.verdict, Released) and how in joiner.verdict.kind, c.describe()
    # At once: within a round trip or two of its start, and everyone else is still serving.
    assert joiner.verdict_at is not None and 3.0 <= joiner.verdict_at <= 3.1
    assert all(n.state == "serving" for n in c.current().values())
    assert c.unsafe() == []
    assert joiner.left_at is not None and joiner.left_at <= 3.1  # /readyz at once


@pytest.mark.parametrize("new_pod", [True, False], ids=["new-pod", "same-pod"])
def test_a_late_joiner_that_cannot_reach_index_0_waits_until_it_can(new_pod: bool) -> None:
    """Its peers' hellos say the barrier passed, but a pod returns only once it has itself
    reached every index: released within a round or two of the partition healing."""
    c = Cluster(3, seed=1, mode="sidecar")
    start(c, {0: 0.0, 1: 0.0, 2: 0.0})
    c.run_until(3.0)
    c.blocked.add((1, 0))
    c.restart(1, new_pod=new_pod)
    c.run_until(6.0)
    joiner = c.current()[1]
    assert joiner.verdict is None, c.describe()
    c.blocked.clear()
    c.run_until(6.0 + BOUND + LINGER)
    assert isinstance(joiner.verdict, Released) and "already released" in joiner.verdict.kind
    assert joiner.verdict_at is not None and joiner.verdict_at <= 6.0 + BOUND
    assert c.unsafe() == []


# --- the early exit: whoever leaves first, nobody is left hanging --------------------------------
def slow_release_to_2(c: Cluster) -> None:
    c.slow[(0, 2)] = 2.0


def release_to_2_lost(c: Cluster) -> None:
    c.on_send = once(Release, Fate.LOST, receiver=2)


def ack_from_2_slow(c: Cluster) -> None:
    c.slow[(2, 0)] = 3.0


def ack_from_2_lost(c: Cluster) -> None:
    c.on_send = once(Ack, Fate.LOST, sender=2)


#: (fault, does the coordinator wait out its linger for an ack that never comes?)
EARLY_EXIT = [
    pytest.param(slow_release_to_2, False, id="1-leaves-while-release-to-2-in-flight"),
    pytest.param(release_to_2_lost, False, id="1-leaves-2-loses-release-and-reconnects"),
    pytest.param(ack_from_2_slow, False, id="coordinator-stays-for-a-slow-ack"),
    pytest.param(ack_from_2_lost, True, id="coordinator-lingers-for-a-lost-ack"),
]


@pytest.mark.parametrize("complete_delay", [0.0, 5.0], ids=["dns-gone-at-exit", "gone-after-5s"])
@pytest.mark.parametrize("fault, lingers", EARLY_EXIT)
def test_early_exit_leaves_nobody_hanging(
    fault: Callable[[Cluster], None], lingers: bool, complete_delay: float
) -> None:
    c = Cluster(3, seed=3, complete_delay=complete_delay, delay=(0.0001, 0.0005))
    start(c, {0: 0.0, 1: 0.0, 2: 0.3})
    fault(c)
    c.run_until(0.3 + LINGER + BOUND + 1)
    current = assert_released(c, after=0.3, by=0.3 + 2.0 + BOUND)
    # Nobody needed a pod that had left: each had reached everyone before anyone left.
    for gone in current.values():
        for other in current.values():
            assert gone.left_at is not None and other.reach_done_at is not None
            assert other.reach_done_at <= gone.left_at
    assert_coordinator_left(current[0], lingers=lingers)


# --- a member given a message no coordinator sends ----------------------------------------------
@pytest.mark.parametrize(
    "message",
    [Hello(Identity("job", "u", 0, 3, 1), Role.REPLY, "n"), Proof("p"), Arrive(), Ack()],
    ids=["hello", "proof", "arrive", "ack"],
)
def test_member_dials_again_after_an_illegal_message(message: Message) -> None:
    """The runner drops the loss of a session the member no longer holds, so the member itself
    must schedule the next dial when it closes the session over a protocol error."""
    member = Member(now=0.0, rand=lambda: 0.5)
    assert member.poll(0.0) != []
    member.opened(7, 0.1)
    actions = member.received(message, 0.2)
    assert member.conn is None and actions == [Close(7)]
    wakeup = member.next_wakeup()
    assert wakeup is not None and wakeup <= 0.2 + 1.0
    assert member.poll(wakeup) != []


@pytest.mark.parametrize(
    "joins",
    [
        pytest.param([7, 9], id="a-reconnect-replaces-the-older-session"),
        pytest.param([9, 7], id="an-older-connection-finishing-its-handshake-late-is-closed"),
    ],
)
def test_a_member_counts_on_its_newest_connection(joins: list[int]) -> None:
    """Member 1 dialled on conn 7, gave up waiting for the reply (a busy coordinator) and
    dialled again on conn 9. Whichever handshake completes last, 7 is closed and its loss does
    not cost 9 its arrival (at 10,000 members the coordinator once closed the newer one, and a
    member that had arrived had to dial and arrive again)."""
    coordinator = Coordinator(Identity("job", "u", 0, 2, 1))
    hello = Hello(Identity("job", "u", 1, 2, 1), Role.MEMBER, "n")
    actions = [a for conn in joins for a in coordinator.joined(conn, hello, 0.0)]
    assert actions == [Close(7)]
    coordinator.closed(7, 0.1)
    coordinator.reached_all("view", 0.1)
    assert Released(ReleaseKind.DECIDED) in coordinator.received(9, Arrive("view"), 0.2)


def test_a_coordinator_that_released_still_awaits_its_acks_when_a_peer_says_released() -> None:
    """``peer_released`` excuses the acks of a restarted coordinator only: one that decided the
    release itself owes its members the linger (a re-probe may well hear a released flag)."""
    coordinator = Coordinator(Identity("job", "u", 0, 2, 1))
    coordinator.joined(7, Hello(Identity("job", "u", 1, 2, 1), Role.MEMBER, "n"), 0.0)
    coordinator.reached_all("view", 0.0)
    assert Released(ReleaseKind.DECIDED) in coordinator.received(7, Arrive("view"), 0.1)
    assert coordinator.peer_released(0.2) == []
    assert not coordinator.may_leave(0.3)
    coordinator.received(7, Ack(), 0.4)
    assert coordinator.may_leave(0.4)


def test_an_arrival_counts_only_with_the_coordinators_own_view() -> None:
    """Pure core: member 1 arrived having reached instances (0, 1, 2); then pod 2 restarted and
    the coordinator reached its new instance (view V2). The old arrival no longer matches, so
    the coordinator waits, whatever order the news came in, until member 1 arrives again with
    V2; and it releases with V2, which member 1 accepts as the view it arrived with."""
    me = Identity("job", "", 0, 3, 29300)
    coordinator = Coordinator(me)
    member = Member(now=0.0, rand=lambda: 0.5)
    assert member.poll(0.0) == [Dial()]
    coordinator.joined(7, Hello(Identity("job", "", 1, 3, 29300), Role.MEMBER, "n"), 0.0)
    coordinator.joined(8, Hello(Identity("job", "", 2, 3, 29300), Role.MEMBER, "n"), 0.0)
    assert member.opened(7, 0.0) == []
    assert member.reached_all("V1", 0.0) == [Send(7, Arrive("V1"))]
    coordinator.received(7, Arrive("V1"), 0.0)
    coordinator.received(8, Arrive("V2"), 0.0)
    assert coordinator.reached_all("V2", 1.0) == []
    assert coordinator.waiting_for() == [
        (1, "arrived, but reached other instances than this pod (a pod restarted)")
    ]
    assert member.unreached(1.0) == []  # nothing to take back: the arrival names its view
    assert member.received(Release("V2"), 1.5) == []  # not before it has reached everyone
    assert member.reached_all("V2", 2.0) == [
        Send(7, Arrive("V2")),
        Send(7, Ack()),
        Released(ReleaseKind.BY_COORDINATOR),
    ]
    assert Released(ReleaseKind.DECIDED) in coordinator.received(7, Arrive("V2"), 2.1)
