"""Membership from the coordinator: past a cut Service answer, pods learn each other's addresses
from index 0 instead of asking cluster DNS for every name.

A Service of more pods than one DNS message holds answers cut short, and asking for every pod
it leaves out by name costs N² queries for the Job (at 128 pods and a cut at 32, 12,000; at
10,000 pods, 10⁸). Past the cut each pod asks DNS only its own name, its coordinator's and its
ring neighbour's (``(i + 1) mod N``), and:

- a **member** reports on its session where it reached its ring neighbour (``Vouch``): an
  address its own lookup gave for that name, and the neighbour answered there;
- the **coordinator** takes a report only on a session that counts (its member's address
  has DNS evidence itself), and only for that member's ring neighbour: pod 0 reaches pod 1 by
  name, pod 1's report vouches for pod 2's address, and so on round the ring, so the chain
  admits every member's session without one lookup each. It hands every member the addresses
  with evidence (``Members``): those its members' counted sessions come from, those it reached
  peers at, those reported;
- a member takes ``Members`` only from its coordinator's session (dialled by the name DNS gives
  for pod 0, its hello checked), and probes what it learns: a peer counts there only when its
  hello names the index the address was vouched for.

In the tree of coordinators (a sparse graph, ``agent.core.groups``) a member's session, and so
its report, goes to its group's coordinator, which admits its group along the same chain (it
reaches its own ring neighbour by name: every ring neighbour is a graph neighbour). The chain
crosses into the next group at its coordinator ``L + G``: the last member of group ``L``
reports it to ``L``, and ``L`` passes that report on to the root on its own session (the root
takes it from a counted group coordinator for ``L + G`` only), so the root admits every group's
coordinator without one lookup each. Nothing is handed out there: a sparse pod asks DNS for
its few targets by name, and a list of its group would cost every member O(√N).

Without a token an address thus counts for an index only with DNS evidence (the Service's
answer, this pod's own lookup, or an admitted member's lookup passed on), and an outsider can
neither be counted (nothing it sends is read before its session counts) nor cost the
coordinator more than the bounds here: ``PER_INDEX`` addresses an index, a log of at most
``LOG_PER_PEER`` x N entries. With a token (proven by every handshake) a counted session is
evidence of itself. Pure.
"""

from __future__ import annotations

from collections.abc import Callable

from agent.core.effects import Effect, Send
from agent.core.group import GroupCoordinator
from agent.core.groups import Tree
from agent.core.reach import PeerStates, Reach
from agent.core.roles import Coordinator, Member
from agent.protocol.wire import MAX_ENTRIES, Members, Vouch

__all__ = ["PER_INDEX", "Vouching"]

#: addresses kept vouched for one index, the newest last (a replaced pod has a new address;
#: the old one may still answer for a while)
PER_INDEX = 2
#: entries the coordinator hands out over a run, per peer: a pod replaced now and then adds a
#: few; past the bound new ones are dropped (the coordinator's check of the lowest index not
#: vouched for, ``agent.core.recheck``, still admits such a member by its name)
LOG_PER_PEER = 4


class Vouching:
    def __init__(
        self,
        peers: int,
        me: int,
        tree: Tree | None = None,
        *,
        seeded: Callable[[int, str], bool] | None = None,
    ) -> None:
        """``tree``: the tree of coordinators (None or one group: the flat barrier);
        ``seeded``: whether this pod's start barrier tied an address to an index, and it still
        holds (``agent.core.seeded``): evidence as good as a peer's."""
        self.peers, self.me, self._seeded = peers, me, seeded
        #: the peer whose address this pod reports: its ring neighbour (read after every call)
        self.ring_next = (me + 1) % peers
        self._tree = tree if tree is not None and tree.size < peers else None
        self._relayed: tuple[int, str] | None = None  # a group coordinator's last relay
        #: past a cut Service answer (seen here, or a member's report heard)
        self.on = False
        self._evidence: dict[int, list[str]] = {}
        self._log: list[tuple[int, str]] = []  # the coordinator's entries to hand out, in order
        self._logged: set[tuple[int, str]] = set()
        self._cursor: dict[int, int] = {}  # the coordinator's sessions: conn -> entries sent
        self._dirty = False  # entries or sessions came since the last hand-out
        self._told: tuple[int, str] | None = None  # the member's last report: (conn, address)
        self._said_on = False  # ``patience`` has said this pod is past a cut
        self._chain_over = False  # ``patience`` has said the coordinator's verdict ends it

    def patience(
        self, side: Coordinator | Member | None, *, cut: bool, wait: float
    ) -> float | None:
        """How long a claim from an address not vouched for waits for the members' reports
        before its name is asked, when that changes (else None): ``wait`` from when this pod is
        first past a cut (its own answer, or a peer's word), at a coordinator or a member
        handed addresses; none once the coordinator has its verdict. Members report no more
        after theirs, and a pod replaced after the release, whose session is the only way its
        new address reaches the coordinator, waited the whole ``wait`` for a report that never
        comes (review 12)."""
        self.on, coordinator = self.on or cut, side if isinstance(side, Coordinator) else None
        if self.on and not self._said_on:
            self._said_on = True
            if coordinator is not None or self.hands_out:  # a tree's member: no hand-out will come
                return wait
        over = coordinator is not None and coordinator.verdict is not None
        if self._said_on and over and not self._chain_over:
            self._chain_over = True
            return 0.0
        return None

    def told_released(self, side: Coordinator | Member | None, reach: Reach) -> list[int]:
        """The peers this pod asks for by name itself once a peer says the barrier passed
        before it arrived: past a cut, at the coordinator, every one it has not reached.
        Nobody hands the coordinator addresses, and the members it learns them from report no
        more once released: a pod 0 replaced after the release waited for its ``--timeout``
        (review 13). One pod's late start costs one query a peer it misses, paced."""
        if not self.on or not isinstance(side, Coordinator):
            return []
        return [peer.index for peer in reach.missing()]

    @property
    def hands_out(self) -> bool:
        """Whether the coordinator hands members addresses (not on the tree)."""
        return self._tree is None

    @property
    def _reports(self) -> bool:
        """Past a cut; in the tree always: a member may see its Service answer whole (it asked
        before the Job outgrew it) while its coordinator's is cut, and nothing is handed out
        there to tell it so (one message a member, the chain's link)."""
        return self.on or self._tree is not None

    def relays(self, coordinator: int) -> int | None:
        """The index a group coordinator below the root passes reports on for: the next
        group's coordinator (None: not a group coordinator, or the last group)."""
        tree = self._tree
        if tree is None or coordinator == 0 or not tree.coordinates(coordinator):
            return None
        nxt = coordinator + tree.size
        return nxt if nxt < self.peers else None

    def vouches(self, index: int, address: str) -> bool:
        """Whether ``address`` has DNS evidence for pod ``index`` passed on by a peer (or by
        this pod's start barrier)."""
        if self._seeded is not None and self._seeded(index, address):
            return True
        return address in self._evidence.get(index, ())

    def add(self, index: int, address: str) -> bool:
        """Evidence that pod ``index`` is at ``address``; True when it is new."""
        if not 0 <= index < self.peers or not address:
            return False
        known = self._evidence.setdefault(index, [])
        if address in known:
            return False
        known.append(address)
        del known[:-PER_INDEX]
        return True

    def due(self, side: Coordinator | Member | None, peers: PeerStates) -> list[Effect]:
        """What this pod's side sends now: the coordinator's hand-outs, or the member's report
        of where it reached its ring neighbour (of ``peers``, looked up only then: this is asked
        after every call), once it has; a group coordinator's report to the root for the next
        group's coordinator."""
        if side is None or not self._reports:
            return []
        if isinstance(side, Coordinator) and not isinstance(side, GroupCoordinator):
            # after the verdict too: a late joiner (a pod replaced after the release) must
            # reach every pod itself, and the addresses a cut answer leaves out come only here
            return list(self.hand_out(side.sessions))
        if side.verdict is not None:
            return []
        if isinstance(side, GroupCoordinator):
            return list(self.relay(side.up.conn))
        ring = peers[self.ring_next]
        return list(self.report(side.conn, ring.address if ring.reached else ""))

    # --- the coordinator ---------------------------------------------------------------------
    def publish(self, index: int, address: str) -> None:
        """Pod ``index`` is at ``address`` with evidence here: to be handed to every member."""
        entry = (index, address)
        if not address or entry in self._logged or len(self._log) >= LOG_PER_PEER * self.peers:
            return
        self._logged.add(entry)
        self._log.append(entry)
        self._dirty = True

    def reported(self, reporter: int, report: Vouch) -> bool:
        """A counted member's report: taken only for its ring neighbour. True when new."""
        ring = report.index == (reporter + 1) % self.peers
        if not (ring or report.index == self.relays(reporter)) or report.index == self.me:
            return False
        # flat, a report says the Job is past a cut; in the tree every member reports, cut or not
        # (``_reports``), and a coordinator with a whole answer stays as it is (not patient)
        self.on = self.on or self._tree is None
        new = self.add(report.index, report.address)
        self.publish(report.index, report.address)
        return new

    def joined(self, conn: int) -> None:
        """A member's session counts now: it is handed every entry from the first."""
        self._cursor[conn] = 0
        self._dirty = True

    def hand_out(self, sessions: dict[int, int]) -> list[Send]:
        """What each counted session (conn -> member index) has not been handed yet."""
        if not self.on or not self._dirty or self._tree is not None:
            return []
        self._dirty = False
        out: list[Send] = []
        for conn in list(self._cursor):
            if conn not in sessions:
                del self._cursor[conn]
        for conn in sessions:
            sent = self._cursor.get(conn, 0)
            for start in range(sent, len(self._log), MAX_ENTRIES):
                out.append(Send(conn, Members(tuple(self._log[start : start + MAX_ENTRIES]))))
            self._cursor[conn] = len(self._log)
        return out

    def relay(self, up: int | None) -> list[Send]:
        """A group coordinator's report to the root of where its last member reached the next
        group's coordinator, once per session and address."""
        index = self.relays(self.me)
        known = self._evidence.get(index, []) if index is not None else []
        if up is None or index is None or not known or self._relayed == (up, known[-1]):
            return []
        self._relayed = (up, known[-1])
        return [Send(up, Vouch(index, known[-1]))]

    # --- a member ----------------------------------------------------------------------------
    def learned(self, message: Members) -> list[tuple[int, str]]:
        """The coordinator's entries: the new ones."""
        return [(i, a) for i, a in message.entries if self.add(i, a)]

    def report(self, conn: int | None, reached_at: str) -> list[Send]:
        """The member's report of where it reached its ring neighbour, once per session and
        address (``reached_at``: "" while it is not reached)."""
        if not self._reports or conn is None or not reached_at or self.ring_next == 0:
            return []
        if self._told == (conn, reached_at):
            return []
        self._told = (conn, reached_at)
        return [Send(conn, Vouch(self.ring_next, reached_at))]
