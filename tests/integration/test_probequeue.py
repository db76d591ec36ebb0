"""The probe queue: a bounded pool of workers, pushed addresses first, no task left when idle."""

from __future__ import annotations

import anyio
import anyio.abc
import pytest

from agent.core.log import LogLine
from agent.io.probequeue import ProbeQueue
from agent.io.supervisor import Supervisor

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(10)]


class Probes:
    """A probe that takes as long as the test says: ``release(n)`` lets the n oldest finish."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.running = 0
        self.most = 0
        self._gates: list[anyio.Event] = []
        self.changed = anyio.Event()

    async def __call__(self, address: str) -> None:
        self.started.append(address)
        self.running += 1
        self.most = max(self.most, self.running)
        gate = anyio.Event()
        self._gates.append(gate)
        self._changed()
        await gate.wait()
        self.running -= 1

    def _changed(self) -> None:
        self.changed.set()
        self.changed = anyio.Event()

    async def until_started(self, n: int) -> None:
        while len(self.started) < n:
            await self.changed.wait()

    def release(self, n: int) -> None:
        for gate in self._gates[:n]:
            gate.set()
        del self._gates[:n]


def _unexpected(event: LogLine) -> None:
    raise AssertionError(event.message)


def _gave_up(address: str) -> None:
    raise AssertionError(f"the queue gave up on {address}")


def _queue(tg: anyio.abc.TaskGroup, probes: Probes, **options: int) -> ProbeQueue:
    """A queue whose probes must not fail: a bug would end the test."""
    return ProbeQueue(tg, probes, supervisor=Supervisor(_unexpected), gave_up=_gave_up, **options)


async def test_at_most_workers_probe_at_once_and_every_address_is_probed_in_order() -> None:
    probes = Probes()
    addresses = [f"10.0.0.{i}" for i in range(10)]
    async with anyio.create_task_group() as tg:
        queue = _queue(tg, probes, workers=3)
        for address in addresses:
            queue.add(address)
        for n in range(3, 11):
            await probes.until_started(n)
            assert probes.running == 3
            probes.release(1)
        probes.release(3)
    # The task group ends by itself: the workers exit once the queue is empty.
    assert probes.started == addresses
    assert probes.most == 3


async def test_a_pushed_address_is_probed_before_the_listed_ones_still_waiting() -> None:
    probes = Probes()
    async with anyio.create_task_group() as tg:
        queue = _queue(tg, probes, workers=2)
        for i in range(4):
            queue.add(f"10.0.0.{i}")
        await probes.until_started(2)
        queue.add("10.0.1.1", pushed=True)
        queue.add("10.0.1.2", pushed=True)
        for n in range(3, 7):  # one probe ends, the next one starts
            probes.release(1)
            await probes.until_started(n)
        probes.release(2)
    assert probes.started == [
        "10.0.0.0",
        "10.0.0.1",
        "10.0.1.1",
        "10.0.1.2",
        "10.0.0.2",
        "10.0.0.3",
    ]


async def test_workers_start_again_after_the_queue_ran_dry() -> None:
    probes = Probes()
    async with anyio.create_task_group() as tg:
        queue = _queue(tg, probes, workers=4)
        queue.add("10.0.0.1")
        await probes.until_started(1)
        probes.release(1)
        await anyio.wait_all_tasks_blocked()
        assert probes.running == 0
        queue.add("10.0.0.2", pushed=True)
        await probes.until_started(2)
        probes.release(1)
    assert probes.started == ["10.0.0.1", "10.0.0.2"]


async def test_a_push_is_probed_at_once_while_every_worker_is_stuck() -> None:
    probes = Probes()
    async with anyio.create_task_group() as tg:
        queue = _queue(tg, probes, workers=2, push_reserve=1)
        for i in range(4):  # dead addresses: each probe waits out its connect deadline
            queue.add(f"10.0.0.{i}")
        await probes.until_started(2)
        queue.add("10.0.1.1", pushed=True)  # a peer said hello: not behind the dead ones
        await probes.until_started(3)
        queue.add("10.0.1.2", pushed=True)  # the reserve is busy: it waits its turn
        await anyio.wait_all_tasks_blocked()
        assert probes.started[2:] == ["10.0.1.1"] and probes.running == 3
        probes.release(3)
        await probes.until_started(5)  # the waiting push, and a listed one (who takes which
        probes.release(2)  # depends on which task the loop wakes first)
        await probes.until_started(6)
        probes.release(1)
    assert sorted(probes.started[3:5]) == ["10.0.0.2", "10.0.1.2"]
    assert probes.most == 3  # two workers and the one probe of the reserve


async def test_a_probe_that_fails_with_a_bug_is_reported_and_the_worker_goes_on() -> None:
    probed: list[str] = []
    reported: list[LogLine] = []
    given_up: list[str] = []

    async def probe(address: str) -> None:
        probed.append(address)
        if address == "10.0.0.1":
            raise KeyError("\x1b[2J")  # what a hostile reply might have provoked

    supervisor = Supervisor(reported.append)
    async with anyio.create_task_group() as tg:
        queue = ProbeQueue(tg, probe, workers=1, supervisor=supervisor, gave_up=given_up.append)
        for i in range(3):
            queue.add(f"10.0.0.{i}")
    assert probed == ["10.0.0.0", "10.0.0.1", "10.0.0.2"]
    assert given_up == ["10.0.0.1"]
    assert supervisor.bugs == 1
    [event] = reported
    assert "probe handler failed for 10.0.0.1: KeyError" in event.message, event.message
    assert event.message.isprintable()
