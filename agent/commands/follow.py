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
from collections.abc import Awaitable, Callable

import anyio

from agent.commands.workload import Workload
from agent.core.exitlead import (
    Follower,
    LeaderSeen,
    StopSignal,
    claims_end,
    end_counts,
)
from agent.core.inputs import Resolution
from agent.core.log import LogKind, LogLevel, LogLine, Reporter
from agent.io.heard import Heard, PeerReached
from agent.protocol.wire import Identity

__all__ = ["LeaderWatch", "stop_when_led"]

_SIGNALS = {StopSignal.TERM: signal.SIGTERM, StopSignal.KILL: signal.SIGKILL}


class LeaderWatch(Heard):
    """The start barrier's hellos, watched for the leader's exit barrier's: :meth:`leader_code`
    returns its workload's code once one came from the leader as the start barrier reached it,
    or from a successor of the leader's, and a lookup of the leader's name made since lists the
    address it came from (``agent.core.exitlead.end_counts``).

    Bounded: one claim waits for its lookup; a newer claim replaces it (the older is dropped
    first), and one lookup runs at a time. A claim dropped or not listed costs the leader
    nothing: its exit barrier says hello again until this pod's has ended."""

    def __init__(
        self,
        me: Identity,
        leader: int,
        name: str,
        resolve: Callable[[str], Awaitable[Resolution]],
    ) -> None:
        """``name``: the leader's, which ``resolve`` looks up for a successor's claim."""
        super().__init__(me)
        self.leader, self.name, self._resolve = leader, name, resolve
        self._seen: LeaderSeen | None = None
        self.code: int | None = None
        self._claim: tuple[str, Identity] | None = None
        self._woken = anyio.Event()

    def released(self, reached: tuple[PeerReached, ...]) -> None:
        super().released(reached)
        for peer in reached:
            if peer.index == self.leader:
                self._seen = LeaderSeen(peer.index, peer.address, peer.instance)

    def came(self, address: str, identity: Identity) -> None:
        super().came(address, identity)
        if self.code is None and claims_end(self.me, self._seen, address, identity):
            self._claim = (address, identity)
            self._woken.set()

    async def leader_code(self) -> int:
        """The code the leader's workload ended with, once it said so and a lookup of the
        leader's name made after that listed the address it came from."""
        while self.code is None:
            await self._woken.wait()
            self._woken = anyio.Event()
            claim, self._claim = self._claim, None
            if claim is not None:
                listed = (await self._resolve(self.name)).addresses
                self.code = end_counts(self.me, self._seen, *claim, listed)
        return self.code


async def stop_when_led(
    watch: LeaderWatch,
    follower: Follower,
    workload: Workload,
    report: Reporter,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Once the leader's workload has ended, stop this pod's: SIGTERM, then SIGKILL when the
    grace period is over. Returns when the workload has ended."""
    code = await watch.leader_code()
    signals = follower.leader_ended(code, clock())
    if signals:
        report(
            LogLine(
                LogKind.WORKLOAD_STOPPED,
                f"the leader's workload (pod {watch.leader}) ended with code {code}: "
                f"stopping this pod's workload (SIGTERM, SIGKILL after {follower.grace:g}s)",
                {"leader": watch.leader, "leader_exit_code": code},
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
