"""Two claims of one member index at the coordinator, and which counts: the pure core, event by
event (real processes: tests/faults/test_silent_claims.py and test_group_replaced_live.py).

A member is replaced while its old process runs on (a terminating pod, or one stopped: its
session open and silent). The coordinator counts one session an index, its newest instance's
(``Coordinator.joined``), and a contact only from an address DNS ties to the index it claims
(``agent.core.admission``). Two ways the old process was taken for the member:

- its session stayed counted, silent, though the Service's whole answer no longer listed its
  address and listed the new pod's: the coordinator waited for it for ever (the look-around
  skips a connected member that has said nothing, and nothing else asked again);
- the new instance's session waited for DNS to vouch for its address (past a cut, for the chain
  of reports) while the old one's arrival counted: the root released everyone with the old
  instance, and the new one waited for members already gone.
"""

from __future__ import annotations

import pytest

from agent.config.parse import build_config
from agent.core.agent import Agent
from agent.core.causes import Cause
from agent.core.effects import Close, Effect, Lookup, ProbeAddress, Released, Sweep
from agent.core.inputs import (
    AddressProbed,
    Input,
    LookedUp,
    Opened,
    Reached,
    Received,
    Resolution,
    Swept,
)
from agent.core.roles import Coordinator
from agent.protocol.instance import instance_id
from agent.protocol.wire import Arrive, Hello, Identity, Role
from agent.topology.podfiles import PodFacts

pytestmark = pytest.mark.timeout(10)

A0, M1, M2, M1_NEW = "10.0.0.1", "10.0.1.1", "10.0.2.1", "10.0.1.9"
I0, I1, I2, I1_NEW = instance_id(1, 0), instance_id(2, 1), instance_id(3, 2), instance_id(5, 1)
_ALL = ((0, A0, I0), (1, M1, I1), (2, M2, I2))  # index, address, instance: before pod 1 moves


def _coordinator() -> Agent:
    config = build_config(
        "wait",
        {"peers": "3", "index": "0", "service": "svc", "namespace": "ns", "timeout": "30s"},
        PodFacts(hostname="job-0"),
    )
    agent = Agent(config, me=Identity("job", "", 0, 3, 29300, I0), now=0.0, rand=lambda: 0.5)
    agent.begin(0.0)
    return agent


def _member(index: int, instance: str) -> Hello:
    return Hello(Identity("job", "", index, 3, 29300, instance), Role.MEMBER, "n")


def _feed(agent: Agent, now: float, *events: Input) -> list[Effect]:
    return [effect for event in events for effect in agent.handle(event, now)]


def _round(agent: Agent, after: float, answer: Resolution) -> tuple[float, list[Effect]]:
    """The next DNS round that falls due after ``after``, answered with ``answer``."""
    now = after
    while Sweep() not in agent.poll(now):
        now = agent.next_wakeup()
    return now, agent.handle(Swept(answer), now)


def _released(effects: list[Effect]) -> bool:
    return any(isinstance(effect, Released) for effect in effects)


# --- the Service's whole answer no longer lists where a member was reached ---------------------
def _silent_member_one() -> Agent:
    """Pods 0 and 1 reached (pod 2 not published yet); member 1's session (conn 7) is open
    and silent: its process was stopped."""
    agent = _coordinator()
    _feed(agent, 0.1, Swept(Resolution((A0, M1))))
    _feed(agent, 0.2, AddressProbed(A0, Reached(0, I0)), AddressProbed(M1, Reached(1, I1)))
    _feed(agent, 0.3, Opened(7, _member(1, I1), False, M1))
    assert isinstance(agent.side, Coordinator) and agent.side.sessions == {7: 1}
    return agent


def test_a_member_the_whole_answer_no_longer_lists_is_reached_anew() -> None:
    """Pod 1 is replaced at M1_NEW as pod 2 is published: the answer that lists pod 2 lists
    M1_NEW, not M1. Pod 1 is reached anew there, its new instance in this pod's view (before,
    pod 1 stayed reached at M1, and the coordinator's view named the stopped instance)."""
    agent = _silent_member_one()
    now, out = _round(agent, 0.3, Resolution((A0, M1_NEW, M2)))
    assert not agent.reach.peers[1].reached
    assert agent.reach.peers[1].failure.cause is Cause.RESTARTED
    assert ProbeAddress(M1_NEW) in out
    _feed(agent, now, AddressProbed(M2, Reached(2, I2)), AddressProbed(M1_NEW, Reached(1, I1_NEW)))
    assert agent.reach.done and agent.reach.peers[1].instance == I1_NEW


def test_a_cut_answer_unties_nobody() -> None:
    """A cut answer leaves addresses out that are there: it says nothing about M1."""
    agent = _silent_member_one()
    _round(agent, 0.3, Resolution((A0, M2), truncated=True))
    assert agent.reach.peers[1].reached and agent.reach.peers[1].address == M1


# --- a newer instance's session waits for DNS while the old one's is counted -------------------
def _both_claims() -> tuple[Agent, str]:
    """Everyone reached, members 1 (conn 7) and 2 (conn 8) counted; then member 1's new
    instance opens a session (conn 9) from M1_NEW, which DNS has not vouched for yet."""
    agent = _coordinator()
    _feed(agent, 0.1, Swept(Resolution((A0, M1, M2))))
    _feed(agent, 0.2, *(AddressProbed(a, Reached(i, n)) for i, a, n in _ALL))
    _feed(agent, 0.3, Opened(7, _member(1, I1), False, M1), Opened(8, _member(2, I2), False, M2))
    assert isinstance(agent.side, Coordinator) and agent.side.view is not None
    _feed(agent, 0.4, Opened(9, _member(1, I1_NEW), False, M1_NEW))
    assert agent.is_holding(9)
    return agent, agent.side.view


def test_a_newer_instance_held_keeps_the_old_ones_arrival_from_releasing() -> None:
    """The old instance (conn 7) arrives with the coordinator's view, as does member 2: no
    release while DNS has not said which of the two pod 1 is, and its name is asked at once
    (before, everyone was released with the old instance counted)."""
    agent, view = _both_claims()
    assert Lookup(1) in agent.poll(0.4)
    out = _feed(agent, 0.5, Received(7, Arrive(view)), Received(8, Arrive(view)))
    assert not _released(out)


def test_dns_giving_the_new_address_counts_the_new_instance() -> None:
    """Pod 1's name gives M1_NEW: the new instance's session counts, the old one's is closed,
    and the release waits for the new instance's arrival."""
    agent, view = _both_claims()
    agent.poll(0.4)
    _feed(agent, 0.5, Received(7, Arrive(view)), Received(8, Arrive(view)))
    out = _feed(agent, 0.6, LookedUp(1, Resolution((M1_NEW,))))
    assert Close(7) in out and not _released(out)
    assert isinstance(agent.side, Coordinator) and agent.side.sessions.get(9) == 1


def test_dns_giving_the_old_address_lets_the_old_instance_count() -> None:
    """Pod 1's name still gives M1 (the claim from M1_NEW may be anybody's): DNS has ruled,
    and the old instance's arrival counts."""
    agent, view = _both_claims()
    agent.poll(0.4)
    _feed(agent, 0.5, Received(7, Arrive(view)), Received(8, Arrive(view)))
    assert _released(_feed(agent, 0.6, LookedUp(1, Resolution((M1,)))))
