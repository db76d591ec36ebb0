"""The exit barrier led by one pod (``agent.core.exitlead``): which hello says the leader's
workload ended, and a follower's stop (SIGTERM, SIGKILL after the grace period, its code)."""

from __future__ import annotations

import dataclasses

import pytest

from agent.config.parse import build_config
from agent.core.exitlead import (
    Follower,
    LeaderSeen,
    Stop,
    StopSignal,
    claims_end,
    end_counts,
    leader_ended,
    successor_claims_end,
    successor_ended,
)
from agent.errors import ConfigError
from agent.protocol.handshake import proves_across
from agent.protocol.wire import EXIT_BARRIER, Identity, named_barrier
from agent.topology.podfiles import PodFacts

pytestmark = pytest.mark.timeout(10)

ME = Identity("job", "uid-1", 1, 3, 29300, "0000000000000001-0000000a")
LEADER = LeaderSeen(0, "10.0.0.1", "0000000000000002-0000000b")
#: the leader's exit barrier's hello: its workload ended with 3
SAID = Identity("job", "uid-1", 0, 3, 29300, LEADER.instance, EXIT_BARRIER, exit_code=3)


def _with(**changes: object) -> Identity:
    return dataclasses.replace(SAID, **changes)  # type: ignore[arg-type]


def test_the_leaders_exit_hello_from_where_it_was_reached_says_its_code() -> None:
    assert leader_ended(ME, LEADER, "10.0.0.1", SAID) == 3
    assert leader_ended(ME, LEADER, "10.0.0.1", _with(exit_code=0)) == 0


@pytest.mark.parametrize(
    ("leader", "address", "hello"),
    [
        pytest.param(None, "10.0.0.1", SAID, id="the-leader-not-reached-yet"),
        pytest.param(LEADER, "10.0.0.9", SAID, id="from-another-address"),
        pytest.param(LEADER, "10.0.0.1", _with(index=2), id="another-index"),
        pytest.param(
            LEADER, "10.0.0.1", _with(instance="0000000000000003-0000000c"), id="restarted"
        ),
        pytest.param(LEADER, "10.0.0.1", _with(job="other"), id="another-job"),
        pytest.param(LEADER, "10.0.0.1", _with(uid="uid-0"), id="another-run"),
        pytest.param(LEADER, "10.0.0.1", _with(peers=4), id="disagrees"),
        pytest.param(LEADER, "10.0.0.1", _with(barrier="", exit_code=None), id="its-start-barrier"),
        pytest.param(
            LEADER, "10.0.0.1", _with(barrier=named_barrier("x"), exit_code=None), id="named"
        ),
    ],
)
def test_no_other_hello_stops_anything(
    leader: LeaderSeen | None, address: str, hello: Identity
) -> None:
    assert leader_ended(ME, leader, address, hello) is None


def test_a_probe_that_cannot_tell_processes_apart_takes_any_at_the_leaders_address() -> None:
    anyone = dataclasses.replace(LEADER, instance="")
    assert leader_ended(ME, anyone, "10.0.0.1", _with(instance="0000000000000003-0000000c")) == 3


NEWER = f"{3:016x}-0000000c"  # a process of the leader's started after the one reached


def test_a_replaced_leaders_end_counts_from_where_dns_lists_the_leader_now() -> None:
    successor = _with(instance=NEWER, exit_code=4)
    assert leader_ended(ME, LEADER, "10.0.0.5", successor) is None  # not as reached
    assert successor_claims_end(ME, LEADER, successor)  # worth a lookup
    assert successor_ended(ME, LEADER, "10.0.0.5", successor, ("10.0.0.5",)) == 4
    assert successor_ended(ME, LEADER, "10.0.0.5", successor, ("10.0.0.1",)) is None


def test_a_lost_leaders_end_replayed_from_its_old_address_counts_only_while_dns_lists_it() -> None:
    """Review10: the leader as reached is lost; whoever holds its old address next replays its
    identity (anyone may ask a probe for it) with an exit code. It is worth a lookup, and
    counts only if DNS still ties that address to the leader's name: not once the name is gone
    or moved to a successor, whose own end then counts from where DNS lists it."""
    replay = _with(exit_code=77)
    assert claims_end(ME, LEADER, "10.0.0.1", replay)
    assert end_counts(ME, LEADER, "10.0.0.1", replay, ()) is None  # the name is gone
    assert end_counts(ME, LEADER, "10.0.0.1", replay, ("10.0.0.5",)) is None  # moved
    successor = _with(instance=NEWER, exit_code=6)
    assert claims_end(ME, LEADER, "10.0.0.5", successor)
    assert end_counts(ME, LEADER, "10.0.0.5", successor, ("10.0.0.5",)) == 6
    assert end_counts(ME, LEADER, "10.0.0.1", SAID, ("10.0.0.1",)) == 3  # the leader, alive
    assert not claims_end(ME, LEADER, "10.0.0.9", SAID)  # neither as reached nor newer


@pytest.mark.parametrize(
    "hello",
    [
        pytest.param(_with(instance=f"{1:016x}-0000000c"), id="an-older-process"),
        pytest.param(_with(instance=NEWER, index=2), id="another-index"),
        pytest.param(_with(instance=NEWER, uid="uid-0"), id="another-run"),
        pytest.param(_with(instance=NEWER, barrier="", exit_code=None), id="not-its-end"),
    ],
)
def test_no_other_claim_is_worth_a_lookup(hello: Identity) -> None:
    assert not successor_claims_end(ME, LEADER, hello)
    assert successor_ended(ME, LEADER, "10.0.0.5", hello, ("10.0.0.5",)) is None


def test_a_workload_that_ends_on_sigterm_is_not_killed_and_the_pod_takes_the_leaders_code() -> None:
    f = Follower(grace=10.0)
    assert f.leader_ended(3, now=100.0) == [StopSignal.TERM]
    assert (f.state, f.next_wakeup()) == (Stop.TERMINATING, 110.0)
    assert f.poll(109.9) == []
    f.workload_ended(143)
    assert f.poll(111.0) == []  # ended: nothing left to kill
    assert (f.state, f.stopped, f.exit_code()) == (Stop.ENDED, True, 3)


def test_a_workload_that_outlives_the_grace_period_is_killed_once() -> None:
    f = Follower(grace=10.0)
    f.leader_ended(0, now=0.0)
    assert f.poll(10.0) == [StopSignal.KILL]
    assert f.poll(20.0) == []
    assert f.leader_ended(0, now=21.0) == []  # a second hello from the leader: nothing new
    f.workload_ended(137)
    assert f.exit_code() == 0


def test_a_workload_that_ended_by_itself_keeps_its_code_whatever_the_leader_says() -> None:
    f = Follower(grace=10.0)
    f.workload_ended(255)
    assert f.leader_ended(0, now=1.0) == []
    assert (f.stopped, f.exit_code(), f.next_wakeup()) == (False, 255, float("inf"))


def test_without_a_grace_period_sigkill_follows_at_the_next_poll() -> None:
    f = Follower(grace=0.0)
    assert f.leader_ended(0, now=5.0) == [StopSignal.TERM]
    assert f.next_wakeup() == 5.0
    assert f.poll(5.0) == [StopSignal.KILL]


@pytest.mark.parametrize(
    ("theirs", "proves"),
    [
        pytest.param(dataclasses.replace(ME, index=2), True, id="a-pod-not-in-it-yet"),
        pytest.param(dataclasses.replace(ME, index=2, job="other"), False, id="another-job"),
        pytest.param(dataclasses.replace(ME, index=2, uid="x"), False, id="another-run"),
        pytest.param(dataclasses.replace(ME, index=1), False, id="not-the-index-dialled"),
        pytest.param(dataclasses.replace(ME, index=2, port=1), False, id="disagrees"),
        pytest.param(
            dataclasses.replace(ME, index=2, barrier=named_barrier("x")), False, id="named"
        ),
    ],
)
def test_the_exit_barrier_proves_its_token_only_to_this_jobs_start_barriers(
    theirs: Identity, proves: bool
) -> None:
    exit_hello = dataclasses.replace(SAID, index=0)
    assert proves_across(exit_hello, theirs, expected_index=2) is proves
    # a start or named barrier never proves to another barrier
    assert not proves_across(ME, dataclasses.replace(SAID, index=2), expected_index=2)


POD = PodFacts(
    hostname="example-job-1",
    hosts="10.244.1.7\texample-job-1.peers.team-a.svc.cluster.local\texample-job-1\n",
    resolv_conf="nameserver 10.96.0.10\n",
)
RUN = {"peers": "3", "index": "1", "exit_barrier": "true"}


def test_the_flags_make_the_config() -> None:
    config = build_config("run", {**RUN, "exit_led_by": "0", "exit_grace": "30s"}, POD)
    assert (config.exit_led_by, config.exit_grace) == (0, 30.0)
    plain = build_config("run", RUN, POD)
    assert (plain.exit_led_by, plain.exit_grace) == (None, 10.0)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"exit_led_by": "first"}, "--exit-led-by / PEER_AGENT_EXIT_LED_BY: not a pod index"),
        ({"exit_led_by": "-1"}, "--exit-led-by / PEER_AGENT_EXIT_LED_BY: not a pod index"),
        ({"exit_led_by": "3"}, "--exit-led-by / PEER_AGENT_EXIT_LED_BY: no pod has index 3"),
        (
            {"exit_led_by": "0", "exit_barrier": "false"},
            "--exit-led-by / PEER_AGENT_EXIT_LED_BY: needs --exit-barrier",
        ),
        (
            {"exit_led_by": "0", "probe": "icmp"},
            "--exit-led-by / PEER_AGENT_EXIT_LED_BY: needs --probe tcp (not icmp)",
        ),
        (
            {"exit_led_by": "0", "probe": "tcp:22"},
            "--exit-led-by / PEER_AGENT_EXIT_LED_BY: needs --probe tcp (not tcp:22)",
        ),
        ({"exit_grace": "soon"}, "--exit-grace / PEER_AGENT_EXIT_GRACE: not a duration"),
    ],
)
def test_bad_exit_lead_input_is_one_line_naming_flag_and_variable(
    values: dict[str, str], expected: str
) -> None:
    with pytest.raises(ConfigError) as info:
        build_config("run", {**RUN, **values}, POD)
    assert [p for p in info.value.problems if expected in p], info.value.problems
