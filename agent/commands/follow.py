"""``run --exit-barrier --exit-led-by I`` in a pod other than I: its workload is stopped when
the leader's ends.

The decisions are ``agent.core.exitlead``'s: which hello is the leader's, and the stop as a
transition table. This module only watches the start barrier's hellos (:class:`LeaderWatch`, fed
by the start barrier's contacts as the exit barrier's :class:`~agent.io.heard.Heard` is) and
sends the signals the table returns to the workload's process group (:func:`stop_when_led`).
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable

import anyio

from agent.commands.workload import Workload
from agent.core.exitlead import Follower, LeaderSeen, StopSignal, leader_ended
from agent.core.log import LogKind, LogLevel, LogLine, Reporter
from agent.io.heard import Heard, PeerReached
from agent.protocol.wire import Identity

__all__ = ["LeaderWatch", "stop_when_led"]

_SIGNALS = {StopSignal.TERM: signal.SIGTERM, StopSignal.KILL: signal.SIGKILL}


class LeaderWatch(Heard):
    """The start barrier's hellos, watched for the leader's exit barrier's: ``ended`` is set,
    and ``code`` holds its workload's code, once one came from the leader as the start barrier
    reached it."""

    def __init__(self, me: Identity, leader: int) -> None:
        super().__init__(me)
        self.leader = leader
        self._seen: LeaderSeen | None = None
        self.code: int | None = None
        self.ended = anyio.Event()

    def released(self, reached: tuple[PeerReached, ...]) -> None:
        super().released(reached)
        for peer in reached:
            if peer.index == self.leader:
                self._seen = LeaderSeen(peer.index, peer.address, peer.instance)

    def came(self, address: str, identity: Identity) -> None:
        super().came(address, identity)
        if self.code is None:
            self.code = leader_ended(self.me, self._seen, address, identity)
            if self.code is not None:
                self.ended.set()


async def stop_when_led(
    watch: LeaderWatch,
    follower: Follower,
    workload: Workload,
    report: Reporter,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Once the leader's workload has ended, stop this pod's: SIGTERM, then SIGKILL when the
    grace period is over. Returns when the workload has ended."""
    await watch.ended.wait()
    assert watch.code is not None
    signals = follower.leader_ended(watch.code, clock())
    if signals:
        report(
            LogLine(
                LogKind.WORKLOAD_STOPPED,
                f"the leader's workload (pod {watch.leader}) ended with code {watch.code}: "
                f"stopping this pod's workload (SIGTERM, SIGKILL after {follower.grace:g}s)",
                {"leader": watch.leader, "leader_exit_code": watch.code},
            )
        )
    _send(signals, workload)
    while not workload.ended.is_set():
        with anyio.move_on_after(max(0.0, follower.next_wakeup() - clock())):
            await workload.ended.wait()
        signals = follower.poll(clock())
        if signals:
            message = f"the workload outlived SIGTERM by {follower.grace:g}s: SIGKILL"
            report(LogLine(LogKind.WORKLOAD_STOPPED, message, level=LogLevel.WARNING))
        _send(signals, workload)


def _send(signals: list[StopSignal], workload: Workload) -> None:
    for sent in signals:
        workload.forward(_SIGNALS[sent])
