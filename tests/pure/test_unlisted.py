"""A contact from an address DNS does not list for the Service yet: normal while cluster DNS
catches up with a pod that just started, so said at debug level; said once as a warning only
when it lasts past the time a healthy cluster takes (``Timing.unlisted_warn_after``), or at once
from loopback, where no pod is. The pure Agent on a hand-held clock, its DNS and probes played
by the test."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import pytest

from agent.config.model import LogLevel
from agent.config.parse import build_config
from agent.core.agent import Agent
from agent.core.effects import Attempt, Effect, ProbeAddress, Report, Sweep
from agent.core.inputs import (
    AddressProbed,
    Attempted,
    Contacted,
    Input,
    Reached,
    Resolution,
    Swept,
)
from agent.core.log import LogKind, LogLine
from agent.core.timing import DEFAULT_TIMING
from agent.protocol.wire import Hello, Identity, Role
from agent.topology.podfiles import PodFacts

pytestmark = pytest.mark.timeout(10)

WARN_AFTER = DEFAULT_TIMING.unlisted_warn_after
PEERS = 3
ADDRESSES = {0: "10.0.0.1", 1: "10.0.0.2"}  # pod 2 says hello from an address of the test's


def _instance(index: int) -> str:
    return f"{index:016x}"


@dataclass
class _Pod0:
    """Pod 0 of three, with the Service listing pods 0 and 1, and pod 2's address from
    ``listed_at`` on (never, by default). Every probe of a listed address is answered."""

    late_address: str
    listed_at: float = math.inf
    agent: Agent = field(init=False)
    lines: list[tuple[float, LogLine]] = field(default_factory=list)

    def __post_init__(self) -> None:
        values = {"peers": str(PEERS), "index": "0", "service": "svc", "namespace": "ns"}
        config = build_config("wait", values, PodFacts(hostname="job-0"))
        me = Identity("job", "", 0, PEERS, 29300, _instance(0))
        self.agent = Agent(config, me=me, now=0.0, rand=lambda: 0.5)
        self._do(self.agent.begin(0.0), 0.0)

    def _at(self, now: float) -> dict[str, int]:
        listed = {address: index for index, address in ADDRESSES.items()}
        if now >= self.listed_at:
            listed[self.late_address] = 2
        return listed

    def _answer(self, effect: Effect, now: float) -> Input | None:
        listed = self._at(now)
        match effect:
            case Sweep():
                return Swept(Resolution(tuple(listed)))
            case ProbeAddress(address=address) if address in listed:
                index = listed[address]
                return AddressProbed(address, Reached(index, _instance(index)))
            case Attempt(index=index):
                reached = Reached(index, _instance(index))
                return Attempted(index, reached, ADDRESSES[index], (ADDRESSES[index],))
            case Report(line=line):
                self.lines.append((now, line))
        return None

    def _do(self, effects: list[Effect], now: float) -> None:
        todo = deque(effects)
        while todo:
            answer = self._answer(todo.popleft(), now)
            if answer is not None:
                todo.extend(self.agent.handle(answer, now))

    def hello_from_pod_2(self, now: float) -> None:
        identity = Identity("job", "", 2, PEERS, 29300, _instance(2))
        contact = Contacted(Hello(identity, Role.PROBE, "00" * 16), self.late_address)
        self._do(self.agent.handle(contact, now), now)

    def run_until(self, end: float) -> None:
        """Every wake-up the agent asks for, up to ``end`` (or until it has finished)."""
        while not self.agent.finished and (now := self.agent.next_wakeup()) <= end:
            self._do(self.agent.poll(now), now)

    def ignored(self, level: LogLevel) -> list[tuple[float, LogLine]]:
        return [
            (t, line)
            for t, line in self.lines
            if line.kind is LogKind.IGNORED and line.level is level
        ]


def test_a_late_pod_listed_within_seconds_is_said_at_debug_level_only() -> None:
    """The demo's late pod: its hello comes 2 s before DNS lists it. One debug line, no
    warning, and it counts as soon as DNS lists it."""
    pod = _Pod0("10.0.0.3", listed_at=3.0)
    pod.run_until(0.5)
    pod.hello_from_pod_2(0.5)
    pod.run_until(WARN_AFTER + 10)
    [(_, debug)] = pod.ignored(LogLevel.DEBUG)
    assert (
        debug.message == "contacts come from 10.0.0.3, which DNS does not list for the Service yet"
    )
    assert debug.fields == {"addresses": ["10.0.0.3"]}
    assert pod.ignored(LogLevel.WARNING) == []
    assert pod.agent.reach.done
    assert not [line for _, line in pod.lines if line.level.at_least(LogLevel.WARNING)]


def test_an_address_still_unlisted_after_the_grace_is_warned_of_once() -> None:
    """A pod outside the Service (or one DNS never publishes) keeps saying hello: debug at
    first, one warning once it has lasted ``unlisted_warn_after``, with what to check."""
    pod = _Pod0("10.0.0.3")
    pod.run_until(0.5)
    pod.hello_from_pod_2(0.5)
    pod.run_until(WARN_AFTER * 2)
    [(debug_at, _)] = pod.ignored(LogLevel.DEBUG)
    [(warned_at, warning)] = pod.ignored(LogLevel.WARNING)
    assert WARN_AFTER <= warned_at - debug_at < WARN_AFTER + 2  # the next round after it
    assert warning.message.startswith(
        f"contacts come from 10.0.0.3, which DNS does not list for the Service (for "
        f"{WARN_AFTER:g}s): not counted"
    )
    assert "publishNotReadyAddresses: true" in warning.message
    assert "--token-file" in warning.message and "--trust-source any" in warning.message
    assert not pod.agent.reach.peers[2].reached


def test_a_contact_from_loopback_is_warned_of_at_once() -> None:
    """No pod is at a loopback address: a mesh or proxy rewrites source addresses, and DNS
    will never list it, so there is nothing to wait for."""
    pod = _Pod0("127.0.0.6")
    pod.run_until(0.5)
    pod.hello_from_pod_2(0.5)
    pod.run_until(5.0)
    [(debug_at, _)] = pod.ignored(LogLevel.DEBUG)
    [(warned_at, warning)] = pod.ignored(LogLevel.WARNING)
    assert warned_at == debug_at
    assert "(from loopback, where no pod is)" in warning.message
    assert "port 29300 kept out of the mesh" in warning.message
