"""What really happened in a simulated cluster: the network's own record, for the checker.

The simulated network (cluster.py with node.py and tasks.py, and the explorer's world.py) calls
these hooks as it carries things out; nothing here reads a core. Kept, in the order it happened
(``seq``), with the simulated time of each step:

- every agent process started: its instance id, index, what it says it is, whether its pod is
  one the Service selects (a Job pod, not an outsider), how long it lingers for acks; and when
  it is gone;
- who heard whose hello in a probe (the reply delivered to the prober), from which address;
- every member session: which instance dialled which, from where; each Arrive and Ack delivered
  to the coordinator's end; when the coordinator's end learnt that the session had ended (its
  loss delivered) or closed it itself;
- every Release a process sent (the view it names; on a sparse graph, the member's own
  arrival it counted), every verdict a process reached (the
  ``Released`` / ``Aborted`` effect it performed) and when its wait ended (``Finish`` / ``Fail``).

tests/sim/safety.py judges the README's guarantee from this record alone.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field

from agent.core.effects import Aborted, Released
from agent.core.graph import ReachGraph
from agent.core.outcome import ReleaseKind
from agent.protocol.wire import Ack, Arrive, Identity, Message, Release

__all__ = ["Process", "Session", "Truth", "Verdict", "sparse_graph"]


def sparse_graph(n: int, uid: str, degree: int | None) -> ReachGraph | None:
    """The graph pods of ``--reach sparse --reach-degree degree`` compute (None: all)."""
    return None if degree is None else ReachGraph(n, uid.encode(), degree)


@dataclass
class Process:
    """One agent process, as the network knows it."""

    instance: str
    index: int
    says: tuple[str, str, int, int]  # job, uid, peers, port: what its hellos claim
    job_pod: bool  # in a pod the Service selects (an outsider's never is)
    linger: float | None  # stays up to this long for its members' acks (None: serves on)
    started: int
    #: its probe tells instances apart (``tcp``); else its views name indices alone ("")
    instances: bool = True
    gone: int | None = None


@dataclass
class Session:
    """One member session: ``client`` dialled ``server`` from ``address``."""

    client: str
    server: str
    address: str
    opened: int
    arrivals: list[tuple[int, str]] = field(default_factory=list)  # (seq, view) delivered
    acked: int | None = None  # the first Ack delivered to the server
    ended: int | None = None  # the server's end lost it (delivered) or closed it
    closed: int | None = None  # the server closed it itself


@dataclass(frozen=True)
class Verdict:
    seq: int
    released: bool
    decided: bool  # a coordinator's own decision (``ReleaseKind.DECIDED``)
    alone: bool  # no barrier (``ReleaseKind.NO_BARRIER``): reaching everyone is all it waits for


@dataclass
class Truth:
    #: the Job's graph of assigned edges when it is sparse (``--reach sparse``), else None
    graph: ReachGraph | None = None
    key: bytes | None = None  # and what its edge sums are keyed by (the Job's uid)
    seq: int = 0
    times: list[float] = field(default_factory=list)  # seq -> simulated time
    processes: dict[str, Process] = field(default_factory=dict)
    #: (listener, speaker) -> (seq, address) of the first probe reply from speaker it got
    heard: dict[tuple[str, str], tuple[int, str]] = field(default_factory=dict)
    sessions: list[Session] = field(default_factory=list)
    #: the sessions again by server, in order: the checker reads a coordinator's own (a scan of
    #: all of them per group coordinator, at 100,000 pods, took minutes)
    by_server: dict[str, list[Session]] = field(default_factory=dict)
    _ends: dict[Hashable, Session] = field(default_factory=dict)  # the server's end -> session
    released_views: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    #: instance -> (seq, its sums) of every Arrive with sums it sent (a group coordinator's
    #: is its aggregate, ``tests/sim/fanin.py``)
    aggregates: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    verdicts: dict[str, Verdict] = field(default_factory=dict)
    left: dict[str, int] = field(default_factory=dict)

    def _step(self, now: float) -> int:
        self.seq += 1
        self.times.append(now)
        return self.seq

    def at(self, seq: int) -> float:
        return self.times[seq - 1]

    # --- hooks: the network calls these as it carries things out ---------------------------------
    def start(
        self,
        me: Identity,
        *,
        job_pod: bool,
        linger: float | None,
        now: float,
        instances: bool = True,
    ) -> None:
        says = (me.job, me.uid, me.peers, me.port)
        seq = self._step(now)
        process = Process(me.instance, me.index, says, job_pod, linger, seq, instances)
        self.processes[me.instance] = process

    def stop(self, instance: str, now: float) -> None:
        process = self.processes[instance]
        if process.gone is None:
            process.gone = self._step(now)

    def hello_heard(self, listener: str, speaker: str, address: str, now: float) -> None:
        """A probe's reply from ``speaker`` at ``address`` was delivered to ``listener``."""
        if (listener, speaker) not in self.heard:
            self.heard[(listener, speaker)] = (self._step(now), address)

    def session(
        self, server_end: Hashable, *, client: str, server: str, address: str, now: float
    ) -> None:
        """``client`` dialled ``server`` from ``address``: the session's server end."""
        session = Session(client, server, address, self._step(now))
        self.sessions.append(session)
        self.by_server.setdefault(server, []).append(session)
        self._ends[server_end] = session

    def delivered(self, end: Hashable, message: Message, now: float) -> None:
        """``message`` was delivered to the core at ``end`` (any end: only a coordinator's
        Arrives and Acks are kept)."""
        session = self._ends.get(end)
        if session is None or session.ended is not None:
            return
        if isinstance(message, Arrive):
            session.arrivals.append((self._step(now), message.view + message.owed))
        elif isinstance(message, Ack) and session.acked is None:
            session.acked = self._step(now)

    def lost(self, end: Hashable, now: float) -> None:
        """The core at ``end`` was told that its session has ended."""
        session = self._ends.get(end)
        if session is not None and session.ended is None:
            session.ended = self._step(now)

    def closed(self, end: Hashable, now: float) -> None:
        """The core at ``end`` closed its session (a ``Close`` effect)."""
        session = self._ends.get(end)
        if session is not None and session.ended is None:
            session.ended = session.closed = self._step(now)

    def sent(self, instance: str, message: Message, now: float) -> None:
        """``instance`` sent ``message`` (a ``Send`` effect); a Release names a view."""
        if isinstance(message, Release) and message.view:  # on a sparse graph, one a member
            views = self.released_views.setdefault(instance, [])
            views.append((self._step(now), message.view + message.owed))
        elif isinstance(message, Arrive) and message.owed:  # a group coordinator's, in a tree
            sent = self.aggregates.setdefault(instance, [])
            sent.append((self._step(now), message.view + message.owed))

    def verdict(self, instance: str, verdict: Released | Aborted, now: float) -> None:
        if instance not in self.verdicts:
            kind = verdict.kind if isinstance(verdict, Released) else None
            decided, alone = kind is ReleaseKind.DECIDED, kind is ReleaseKind.NO_BARRIER
            self.verdicts[instance] = Verdict(self._step(now), kind is not None, decided, alone)

    def ended_wait(self, instance: str, now: float) -> None:
        """``instance``'s wait ended (``Finish`` or ``Fail``): it left, or serves on."""
        self.left.setdefault(instance, self._step(now))
