"""What really happened in a simulated cluster, kept beside the cores it checks (cluster.py).

Who heard whose hello and when (a probe result delivered), which arrivals each coordinator got on
sessions it trusts, the Arrives it holds on sessions not vouched for yet, and every release a
coordinator decided: the ground truth the instance-level safety property (safety.py) is checked
against.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agent.core.effects import Close, Effect
from tests.sim.safety import Decision

if TYPE_CHECKING:
    from tests.sim.node import End, Node

__all__ = ["Truth"]


class Truth:
    def __init__(self) -> None:
        #: (listener instance, speaker instance) -> when the listener's core first got a probe
        #: result with the speaker's hello: the ground truth of who reached whom
        self.heard: dict[tuple[str, str], float] = {}
        #: coordinator node -> member index -> (sender instance, session end) of its last Arrive
        #: on a session it trusts: one from an address it has seen DNS list (or a token's)
        self.arrivals: dict[Node, dict[int, tuple[str, End]]] = {}
        #: coordinator node -> session -> the Arrives that came while its core held the session
        #: unvouched (as it holds an outsider's): they arrive when it vouches for the session
        self.unvouched: dict[Node, dict[int, list[tuple[int, str, End]]]] = {}
        self.decisions: list[Decision] = []

    def heard_hello(self, listener: str, speaker: str, now: float) -> None:
        self.heard.setdefault((listener, speaker), now)

    def arrive(self, node: Node, end: End, sender: Node) -> None:
        """An Arrive from ``sender`` reached coordinator ``node`` on ``end``."""
        arrival = (sender.me.index, sender.me.instance, end)
        if node.agent.is_holding(end.conn):
            self.unvouched.setdefault(node, {}).setdefault(end.conn, []).append(arrival)
        else:
            self.arrivals.setdefault(node, {})[arrival[0]] = arrival[1:]

    def vouched(self, node: Node, effects: list[Effect]) -> None:
        """``node``'s core has handled an event and asks for ``effects``: the Arrives of a
        session it has since vouched for are its arrivals now (even if the session has died
        since, as on a trusted session: the coordinator has not heard of the loss, and that
        instance did arrive), except those of one it closes at once (a member's older session,
        superseded by a newer one). Booked in the order the core replays them: session by
        session as their Opened came, not as the Arrives came (two instances of one index may
        both be vouched for by one answer)."""
        held = self.unvouched.get(node, {})
        closing = {e.conn for e in effects if isinstance(e, Close)}
        vouched = [c for c in held if not node.agent.is_holding(c)]
        for conn in sorted(vouched, key=lambda c: (held[c][0][2].opened_at, c)):
            for index, instance, end in held.pop(conn):
                if conn not in closing:
                    self.arrivals.setdefault(node, {})[index] = (instance, end)

    def lost_while_held(self, node: Node, conn: int) -> None:
        """``node``'s core learns that session ``conn``, still held, is gone: it drops the
        session and its messages unread, so they never were arrivals."""
        self.unvouched.get(node, {}).pop(conn, None)

    def released(self, node: Node, now: float) -> None:
        """``node``'s core has just emitted Released: a coordinator's own decision is recorded
        with the instance of each index it counted and the arrivals the network delivered to it
        on sessions it trusts (a session that died after its Arrive came in still counts until
        the coordinator hears of the loss: that instance did arrive). A session from an address
        it has not seen DNS list is held unread, as an outsider's is: a replaced pod's new
        instance arrives when it is vouched for, and a release counting the old instance
        before that is the same as one before the new instance said hello."""
        if node.coordinator is None or not node.counted:
            return
        view = {i: p.instance for i, p in enumerate(node.reach.peers)}
        arrived = {i: instance for i, (instance, _) in self.arrivals.get(node, {}).items()}
        self.decisions.append(Decision(now, node.me.instance, view, arrived))
