"""What the core hears instead of an I/O task's result when the task fails with a bug, for both
drivers (``agent.io.executor``, ``agent.io.sync.runner``).

An effect that starts a task (an attempt, a sweep, a lookup, a dial) waits for its event; a task
that dies of a bug must still give one, or the core would wait for ever. Which event, and the
kind and DNS name the bug is reported under, is decided here once: the drivers differ only in
how they start the task.
"""

from __future__ import annotations

from typing import assert_never

from agent.core.causes import Cause, Failure
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
from agent.topology.model import Topology

__all__ = ["BUG", "Tasked", "instead", "probe_given_up"]

#: what the core hears from an I/O task that failed with a bug (reported), instead of its result
BUG = Failure("failed with a bug (reported)", Cause.BUG)

#: the effects that start a task whose result the core waits for
Tasked = Attempt | Sweep | Lookup | Dial


def instead(effect: Tasked, topology: Topology) -> tuple[str, str, Input]:
    """The task's kind, the name its bug is reported under, and the event the core gets in
    place of its result."""
    match effect:
        case Attempt(index=index):
            return "attempt", topology.display(index), Attempted(index, Unreached(BUG))
        case Sweep():
            return "sweep", topology.service_fqdn or "", Swept(Resolution(failure=BUG))
        case Lookup(index=index):
            return "lookup", topology.display(index), LookedUp(index, Resolution(failure=BUG))
        case Dial(index=index):
            return "dial", topology.display(index), DialFailed(BUG.reason)
        case _:
            assert_never(effect)


def probe_given_up(address: str) -> AddressProbed:
    """What the core hears of an address of a sweep whose probe the driver's queue gave up on
    (its worker failed with a bug): the address gets a result, or the sweep would wait for it
    for ever."""
    return AddressProbed(address, Unreached(BUG))
