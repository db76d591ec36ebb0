"""This pod's side of the barrier as the agent drives it (``agent.core.roles`` has the sides).

Index 0 coordinates, every other pod is a member, and a pod without a barrier (``--barrier
none``, a launcher's one-sided wait) has no side. Sessions' events are routed to the side, its
actions come back as effects, and an abort's time is noted (the abort linger counts from it) and
reported. Pure.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from agent.config.model import BarrierMode, Config
from agent.core.effects import Aborted, Close, Effect, Released, Report, Send
from agent.core.group import GroupCoordinator
from agent.core.groups import Tree
from agent.core.inputs import DialFailed, Lost, Opened, Received
from agent.core.log import LogKind, LogLevel, LogLine
from agent.core.roles import Action, Coordinator, Member
from agent.core.targets import targets_of
from agent.core.timing import Timing
from agent.protocol.wire import Identity, Refuse

__all__ = ["Barrier"]


class Barrier:
    def __init__(
        self, config: Config, me: Identity, *, now: float, rand: Callable[[], float], timing: Timing
    ) -> None:
        self.me = me
        self.side: Coordinator | Member | None = None
        index, targets = config.topology.index, targets_of(config)
        sparse = targets is not None and not targets.complete
        # a tree of coordinators on a sparse graph; one coordinator on the complete graph
        tree = self.tree = Tree.of(me.peers, flat=not sparse)
        #: whom this pod holds its session with (``agent.core.groups``)
        self.parent = tree.parent(index or 0)
        if config.barrier is not BarrierMode.ALL or index is None:
            pass
        elif index == 0:
            linger = timing.ack_linger
            self.side = Coordinator(
                me, ack_linger=linger, sparse=sparse, tree=tree if sparse else None
            )
        elif tree.coordinates(index):
            self.side = GroupCoordinator(
                me, tree, now=now, rand=rand, backoff=timing.backoff, ack_linger=timing.ack_linger
            )
        else:
            self.side = Member(now=now, rand=rand, backoff=timing.backoff, parent=self.parent)
        self.aborted_at = math.inf  # when the barrier aborted here

    @property
    def verdict(self) -> Released | Aborted | None:
        return self.side.verdict if self.side is not None else None

    def act(self, actions: list[Action], now: float) -> list[Effect]:
        """The side's actions, with the abort's time noted and reported."""
        out: list[Effect] = []
        for action in actions:
            out.append(action)
            if isinstance(action, Aborted):
                self.aborted_at = now
                aborted = f"barrier aborted: {action.reason}"
                out.append(Report(LogLine(LogKind.ABORTED, aborted, level=LogLevel.ERROR)))
        return out

    def opened(self, event: Opened, now: float) -> list[Effect]:
        """A session's handshake completed (and is vouched for): the member's own dial, or a
        member's session with the coordinator; any other pod is refused."""
        side = self.side
        if event.dialled and isinstance(side, GroupCoordinator):
            return self.act(side.opened_up(event.conn, now, event.hello.identity.instance), now)
        if event.dialled and isinstance(side, Member):
            return self.act(side.opened(event.conn, now, event.hello.identity.instance), now)
        if not event.dialled and isinstance(side, Coordinator):
            return self.act(side.joined(event.conn, event.hello, now), now)
        why = f"pod {self.me.index} is not the coordinator"
        return [Send(event.conn, Refuse(why)), Close(event.conn)]

    def carried(self, event: Received | Lost, now: float) -> list[Effect]:
        """A message on a session, or its loss. A member heeds only its current session: a
        message on another is closed."""
        side = self.side
        if isinstance(side, GroupCoordinator) and event.conn == side.up.conn:
            if isinstance(event, Received):
                return self.act(side.from_root(event.message, now), now)
            return self.act(side.root_lost(event.reason, now), now)
        if isinstance(side, Coordinator):
            if isinstance(event, Received):
                return self.act(side.received(event.conn, event.message, now), now)
            return self.act(side.closed(event.conn, now), now)
        if isinstance(side, Member) and event.conn == side.conn:
            if isinstance(event, Received):
                return self.act(side.received(event.message, now), now)
            return self.act(side.disconnected(event.reason, now), now)
        return [Close(event.conn)] if isinstance(event, Received) else []

    def parent_heard(self, newest: str, now: float) -> list[Effect]:
        """``newest``: the newest instance of index 0 heard of; a member leaves a session with
        an older one (``Member.heard_of_coordinator``)."""
        side = self.side
        if isinstance(side, GroupCoordinator):
            return self.act(side.heard_of_root(newest, now), now)
        return (
            self.act(side.heard_of_coordinator(newest, now), now)
            if isinstance(side, Member)
            else []
        )

    def replaced(self, now: float) -> list[Effect]:
        """This pod was replaced (its own name leads to a newer instance of its index): it no
        longer counts itself; as the coordinator it releases nobody."""
        side = self.side
        if isinstance(side, Coordinator):
            return self.act(side.replaced(now), now)
        return self.act(side.unreached(now), now) if side is not None else []

    def dial_failed(self, failed: DialFailed, now: float) -> list[Effect]:
        """The dial of this pod's coordinator opened no session: dialled again, unless the
        coordinator that answered disagrees on the job. Then everyone stops, as when a probe
        finds a pod that disagrees: with a probe that says no hello (dns, icmp, tcp:PORT) its
        hello is the only peer count this pod sees, and a coordinator that has aborted on this
        pod's own hello and gone would leave it waiting for the timeout (exit 3, not 4)."""
        side, reason = self.side, failed.reason
        if failed.disagrees and side is not None:
            return self.act(side.abort(failed.disagrees, now), now)
        if isinstance(side, GroupCoordinator):
            return self.act(side.root_lost(reason, now), now)
        return self.act(side.disconnected(reason, now), now) if isinstance(side, Member) else []

    def poll(
        self, now: float, refused_at: tuple[str, ...], newest_at: tuple[str, ...]
    ) -> list[Effect]:
        """The dial of this pod's coordinator, when due (``Member.poll``)."""
        side = self.side
        if isinstance(side, GroupCoordinator):
            return self.act(side.poll_up(now, refused_at, newest_at), now)
        return (
            self.act(side.poll(now, refused_at, newest_at), now) if isinstance(side, Member) else []
        )

    def next_dial(self) -> float | None:
        side = self.side
        if isinstance(side, GroupCoordinator):
            return side.up.next_wakeup()
        return side.next_wakeup() if isinstance(side, Member) else None
