"""The shared port's routing rule (``agent.protocol.routing``): a hello reaches the barrier
instance it names, or the start barrier while that one has not begun here."""

from __future__ import annotations

from agent.protocol.routing import key_of, route
from agent.protocol.wire import EXIT_BARRIER, Identity, named_barrier

START = Identity("job", "uid", 1, 3, 29300, "0000000000000001-00000001")
EXIT = Identity("job", "uid", 1, 3, 29300, "0000000000000001-00000001", EXIT_BARRIER, 0)
DATA = Identity("job", "uid", 1, 3, 29300, "0000000000000001-00000001", named_barrier("data"))


def test_a_hello_goes_to_the_instance_it_names() -> None:
    registered = [key_of(START), key_of(EXIT), key_of(DATA)]
    assert route(EXIT, registered) == key_of(EXIT)
    assert route(DATA, registered) == key_of(DATA)
    assert route(START, registered) == key_of(START)


def test_a_hello_for_a_barrier_not_begun_here_goes_to_the_start_barrier() -> None:
    """A peer whose exit barrier has begun, while this pod's workload still runs, is answered by
    the start barrier (as a stranger), not dropped."""
    assert route(EXIT, [key_of(START)]) == key_of(START)
    assert route(DATA, [key_of(START), key_of(EXIT)]) == key_of(START)


def test_no_instance_no_route() -> None:
    assert route(START, []) is None
