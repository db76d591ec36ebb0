"""What the barrier tests assert about a simulated cluster, and how they set one up."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import pytest

from agent.core.effects import Aborted, Released
from agent.core.timing import DEFAULT_TIMING
from agent.protocol.wire import Message
from tests.sim.cluster import Cluster, Fate, Node

__all__ = [
    "BOUND",
    "LINGER",
    "assert_aborted",
    "assert_coordinator_left",
    "assert_released",
    "once",
    "start",
]

#: Release after the last start or fault: the retry backoff's cap (1 s) plus a few round trips.
BOUND = 1.5
LINGER = DEFAULT_TIMING.ack_linger


def start(c: Cluster, times: dict[int, float], **spec: Any) -> None:
    for index, when in times.items():
        c.at(when, functools.partial(c.start, index, **spec))


def once(
    kind: type[Message], fate: Fate, *, sender: int | None = None, receiver: int | None = None
) -> Callable[[Node, Node, Message], Fate]:
    """A send hook that gives the first matching message ``fate``, then delivers everything."""
    fired = False

    def hook(src: Node, dst: Node, message: Message) -> Fate:
        nonlocal fired
        match = isinstance(message, kind) and sender in (None, src.me.index)
        if not fired and match and receiver in (None, dst.me.index):
            fired = True
            return fate
        return Fate.DELIVER

    return hook


def assert_released(c: Cluster, *, after: float, by: float) -> dict[int, Node]:
    """Every index's latest agent released in [after, by], safely; in wait mode, all gone."""
    state = c.describe()
    assert c.unsafe() == [], state
    current = c.current()
    assert sorted(current) == list(range(c.peers)), state
    for node in current.values():
        assert isinstance(node.verdict, Released), state
        assert node.verdict_at is not None and after <= node.verdict_at <= by, state
        if node.mode == "wait" and node.coordinator is None:
            assert node.exited, state  # a member leaves with its verdict
    return current


def assert_coordinator_left(coordinator: Node, *, lingers: bool) -> None:
    """``may_leave``: at the last member's ack, or at the linger bound when one never comes.
    A released sidecar stays up anyway: it is ready (``_run`` returns) at the verdict."""
    verdict_at, left_at = coordinator.verdict_at, coordinator.left_at
    assert verdict_at is not None and left_at is not None
    if coordinator.mode == "sidecar":
        assert left_at == verdict_at
    elif lingers:
        assert coordinator.all_acked_at is None
        assert left_at == pytest.approx(verdict_at + LINGER)
    else:
        assert coordinator.all_acked_at == left_at


def assert_aborted(c: Cluster, word: str) -> None:
    state = c.describe()
    assert c.unsafe() == [], state
    assert not any(isinstance(n.verdict, Released) for n in c.nodes), state
    current = c.current()
    assert sorted(current) == list(range(c.peers)), state
    for node in current.values():
        assert isinstance(node.verdict, Aborted) and word in node.verdict.reason, state
