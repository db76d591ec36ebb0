"""A held session's check and an attempt of the same name (the DNS pace lets one query a name
be in flight, ``agent.core.asking``): the check waits behind the attempt only until it lands,
and the attempt's answer vouches too. Both found in CI (tests/sim/test_check_behind_attempt.py
has the schedule). Events in, effects out, on a hand-held clock."""

from __future__ import annotations

import pytest

from agent.core.causes import Cause, Failure
from agent.core.effects import Attempt, Lookup, Released
from agent.core.inputs import Attempted, Reached, Received, Unreached
from agent.protocol.wire import Arrive
from tests.pure.test_admission import FIRST, _address, _agent, _hello, _me, _open, _reached_by_name

pytestmark = pytest.mark.timeout(20)


def test_a_check_that_falls_due_behind_an_attempt_of_the_name_is_asked_once_it_lands() -> None:
    """The look-around attempts pod 1 at 1.1 s; its check, due at 2 s, waits behind that query
    and is asked once it lands, not a doubled gap later (in CI the two timers fell in step, every
    check was put back, and the held session was never named)."""
    agent = _agent(2, 0, probe="dns")
    _reached_by_name(agent, 2)
    _open(agent, 8, _hello(1, 2, serial=2), "10.0.0.9", 1.0)
    assert Attempt(1, hello=True) in agent.poll(agent.next_wakeup())
    assert Lookup(1) not in agent.poll(1.0 + FIRST)
    agent.handle(
        Attempted(1, Unreached(Failure("refused", Cause.CONNECT_REFUSED)), _address(1)), 2.5
    )
    assert Lookup(1) in agent.poll(now := agent.next_wakeup()) and now < 1.0 + 3 * FIRST


@pytest.mark.parametrize("probe", ["dns", "icmp", "tcp:8080"])
def test_a_re_checks_answer_vouches_for_a_replaced_members_held_session(probe: str) -> None:
    """Pod 1 was reached; its replacement speaks from a new address, so its session is held.
    The look-around's attempt of its name reaches it there: that answer vouches for the
    session, and the barrier releases (in CI it waited for a check the pace had put back)."""
    agent = _agent(2, 0, probe=probe)
    _reached_by_name(agent, 2)
    _open(agent, 8, _hello(1, 2, serial=2), "10.0.0.9", 1.0)
    agent.handle(Received(8, Arrive(agent.reach.view())), 1.0)
    assert Attempt(1, hello=True) in agent.poll(agent.next_wakeup())
    reached = Reached(1, _me(1, 2, serial=2).instance)
    effects = agent.handle(Attempted(1, reached, "10.0.0.9", ("10.0.0.9",)), 1.2)
    assert Released in [type(e) for e in effects] and not agent.is_holding(8)


def test_an_attempts_answer_vouches_where_its_probe_was_refused() -> None:
    """``--probe tcp:PORT``: pod 1's workload port refuses, but DNS gave its address to the
    attempt, and its agent's session comes from there: the session counts (an outside review
    saw the timeout call that address one "DNS does not list")."""
    agent = _agent(2, 0, probe="tcp:8080")
    agent.begin(0.0)
    _open(agent, 8, _hello(1, 2), _address(1), 0.05)
    assert agent.is_holding(8)
    refused = Unreached(Failure("connect to port 8080: refused", Cause.CONNECT_REFUSED))
    agent.handle(Attempted(1, refused, _address(1), (_address(1),)), 0.1)
    assert not agent.is_holding(8)
