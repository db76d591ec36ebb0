"""What the core hears instead of a task that failed with a bug: the same for both drivers, now
that ``agent.core.instead`` is the one place that says it (each driver's executor had a copy)."""

from __future__ import annotations

import pytest

from agent.config.parse import build_config
from agent.core.causes import Cause
from agent.core.effects import Attempt, Dial, Lookup, Sweep
from agent.core.inputs import (
    AddressProbed,
    Attempted,
    DialFailed,
    Input,
    LookedUp,
    Resolution,
    Swept,
    Unreached,
)
from agent.core.instead import BUG, Tasked, instead, probe_given_up
from agent.topology.podfiles import PodFacts

pytestmark = pytest.mark.timeout(10)

_CONFIG = build_config(
    "wait",
    {"peers": "3", "index": "0", "service": "svc", "namespace": "ns"},
    PodFacts(hostname="job-0"),
)


@pytest.mark.parametrize(
    ("effect", "kind", "event"),
    [
        (Attempt(2), "attempt", Attempted(2, Unreached(BUG))),
        (Lookup(1), "lookup", LookedUp(1, Resolution(failure=BUG))),
        (Dial(index=0), "dial", DialFailed(BUG.reason)),
    ],
)
def test_each_task_gives_its_event_with_the_bug(effect: Tasked, kind: str, event: Input) -> None:
    assert not isinstance(effect, Sweep)
    assert instead(effect, _CONFIG.topology) == (
        kind,
        _CONFIG.topology.display(effect.index),
        event,
    )


def test_a_sweep_is_reported_under_the_services_name() -> None:
    kind, name, got = instead(Sweep(), _CONFIG.topology)
    assert (kind, name) == ("sweep", _CONFIG.topology.service_fqdn)
    assert isinstance(got, Swept) and got.resolution.failure == BUG


def test_an_address_given_up_on_still_gets_a_result() -> None:
    got = probe_given_up("198.18.0.7")
    assert got == AddressProbed("198.18.0.7", Unreached(BUG))
    assert BUG.cause is Cause.BUG
