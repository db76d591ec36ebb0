"""The README's guarantee, judged from the simulated network's record alone (truth.py).

docs/guarantee.md, at instance level: every agent process of the Job that returns 0 was either

- **counted**: an instance of index 0 decided the release on a *view* (one instance of each
  index) that it had reached itself, in which every other index's instance had arrived with that
  same view over a session the coordinator had not yet seen end, and had reached every instance
  in it; this instance is in it;
- or a **late joiner**: some such decision came first, and this instance had itself reached an
  instance of every index when it returned.

Nothing here asks a core what it holds or counts. A decision is the coordinator's own verdict
(the ``Released`` effect it performed, decided on its own); the view it decided on is the one its
Release messages name, read by trying the instances it had heard (a view is the digest of one
instance per index, ``agent.core.reach.view_digest``, as on the wire); an arrival is an Arrive
the network delivered to the coordinator on a session, and it stops counting when the network
told the coordinator that session was gone (or it closed it). Also judged from the record:

- a coordinator that decided leaves only once every member's Ack was delivered to it, or its
  linger bound has passed (no member left waiting on a coordinator that has gone);
- no pod of the Job aborts while every pod of the Job agrees on the Job (an outsider's word
  never aborts it);
- no bound cuts an admitted session: before its verdict a coordinator never closes the session
  of a live member that is its index's only live instance (and the only one that ever dialled
  it), dialled from the address where the coordinator had reached that very instance (so the
  session counts by the admission rule), and that member's newest session.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass

from agent.core.groups import Tree
from agent.core.reach import view_digest
from tests.sim.fanin import made_of
from tests.sim.truth import Process, Session, Truth

__all__ = ["Decision", "violations"]


@dataclass(frozen=True)
class Decision:
    """Coordinator ``by`` released everyone at ``seq``, counting ``view`` (an instance an
    index), which its Release messages name as ``digest``."""

    by: str
    seq: int
    digest: str
    #: None: no view its Releases name is made of what it reached; "" for an index: any of its
    #: instances (a probe that cannot tell them apart: the guarantee holds per index)
    view: tuple[str, ...] | None


def violations(n: int, truth: Truth) -> list[str]:
    """Everything in ``truth`` that breaks the guarantee (or the rules above), one line each."""
    judge = _Judge(n, truth)
    out = judge.aborts()
    for decision in judge.decisions:
        out += judge.decision(decision)
        out += judge.acks(decision)
    return out + judge.releases() + judge.cuts()


class _Judge:
    def __init__(self, n: int, truth: Truth) -> None:
        self.n, self.truth = n, truth
        self.procs = truth.processes
        #: listener -> speaker -> seq it first heard the speaker's hello
        self.heard: dict[str, dict[str, int]] = defaultdict(dict)
        for (listener, speaker), (seq, _) in truth.heard.items():
            self.heard[listener][speaker] = seq
        self.decisions = [d for d in map(self._decided, truth.verdicts) if d is not None]

    def name(self, instance: str) -> str:
        process = self.procs.get(instance)
        index = "?" if process is None else process.index
        return f"{index}:{instance}"

    def when(self, seq: int) -> str:
        return f"{self.truth.at(seq):.4f}"

    def job_pod(self, instance: str) -> bool:
        process = self.procs.get(instance)
        return process is not None and process.job_pod

    def reached(self, listener: str, speaker: str, index: int, seq: int) -> bool:
        """``listener`` had heard ``speaker`` (any instance of ``index`` if "") by ``seq``."""
        if not speaker:
            return self._reached_index(listener, index, seq)
        return self.heard[listener].get(speaker, seq + 1) <= seq

    # --- decisions -------------------------------------------------------------------------------
    def _decided(self, instance: str) -> Decision | None:
        verdict = self.truth.verdicts[instance]
        if not verdict.decided or not self.job_pod(instance):
            return None
        views = {v for _, v in self.truth.released_views.get(instance, [])}
        if self.sparse:
            return Decision(instance, verdict.seq, "", self._counted(instance, verdict.seq, views))
        if self.n == 1 and not views:
            return Decision(instance, verdict.seq, view_digest([instance]), (instance,))
        digest = min(views) if views else ""
        return Decision(instance, verdict.seq, digest, self._decode(instance, verdict.seq, digest))

    @property
    def sparse(self) -> bool:
        graph = self.truth.graph
        return graph is not None and not graph.complete

    def targets(self, index: int) -> tuple[int, ...]:
        """Whom pod ``index`` must reach: its neighbours on a sparse graph, else everyone."""
        graph = self.truth.graph
        if graph is None or graph.complete:
            return tuple(range(self.n))
        return (*graph.neighbours(index), Tree.of(self.n).parent(index), index)

    def _counted(self, by: str, seq: int, tokens: set[str]) -> tuple[str, ...] | None:
        """On a sparse graph each member's Release names its own arrival (its sums, which name
        its instance): the instance of each index whose arrival it names came on a session
        still live at ``by`` at ``seq``; None when an index has none."""
        counted = [by] + [""] * (self.n - 1)
        instances = self.procs[by].instances
        for s in self.truth.by_server.get(by, ()):
            client = self.procs[s.client]
            live = s.ended is None or s.ended > seq
            named = [v for a, v in s.arrivals if a < seq and v in tokens]
            if s.server != by or not live or not named:
                continue
            counted[client.index] = s.client
            if self.tree.weight(client.index) > 1:  # a group coordinator: its group's arrivals
                group = made_of(
                    self.truth, self.tree, s.client, named[-1], until=seq, instances=instances
                )
                for index, instance in (group or {}).items():
                    counted[index] = instance
        if "" in counted:
            return None
        return tuple(counted) if instances else ("",) * self.n

    @property
    def tree(self) -> Tree:
        """The tree of coordinators (``agent.core.groups``): one group on the complete graph."""
        return Tree.of(self.n, flat=not self.sparse)

    def _decode(self, by: str, seq: int, digest: str) -> tuple[str, ...] | None:
        """The instances of the view ``digest`` names, of those ``by`` had heard by ``seq``."""
        heard = [[] for _ in range(self.n)]  # type: list[list[str]]
        for speaker, at in self.heard[by].items():
            process = self.procs.get(speaker)
            if at <= seq and process is not None and 0 <= process.index < self.n:
                heard[process.index].append(speaker)
        if not self.procs[by].instances:
            heard = [[""] if h else [] for h in heard]
        for view in itertools.product(*heard):
            if view_digest(view) == digest:
                return view
        return None

    def decision(self, d: Decision) -> list[str]:
        if self.sparse:
            return self.sparse_decision(d)
        out, by, when = [], self.name(d.by), self.when(d.seq)
        views = {v for _, v in self.truth.released_views.get(d.by, [])}
        if len(views) > 1:
            out.append(f"{by} sent Releases naming {len(views)} different views")
        if d.view is None:
            what = "no view" if not d.digest else "a view made of instances it had not reached"
            return [*out, f"{by} released at {when} counting {what}"]
        if d.view[0] not in (d.by, ""):
            out.append(f"{by} released at {when} on a view that counts {self.name(d.view[0])}")
        for i, entry in enumerate(d.view):
            if entry and not self.job_pod(entry):
                out.append(f"{by} released at {when} counting {self.name(entry)}, no Job pod")
            if i == 0:
                continue
            problems, arrived = self._arrived(d, i, entry)
            out += problems
            for instance in arrived:
                out += [
                    f"{by} released at {when}: {self.name(instance)} had not reached "
                    f"{self.name(other) if other else f'any {j}'}"
                    for j, other in enumerate(d.view)
                    if j != i and not self.reached(instance, other, j, d.seq)
                ]
        return out

    def sparse_decision(self, d: Decision) -> list[str]:
        """On a sparse graph (docs/at-scale.md): one arrival of every index over a live session
        was counted, and every assigned edge was proven both ways between the counted
        instances (each had heard the other's hello by the release). As the graph is connected,
        pods split into groups that cannot reach each other are never released."""
        by, when = self.name(d.by), self.when(d.seq)
        if d.view is None:
            return [f"{by} released at {when} without a live arrival of every index"]
        out = []
        graph = self.truth.graph
        assert graph is not None
        for i, x in enumerate(d.view):
            if x and not self.job_pod(x):
                out.append(f"{by} released at {when} counting {self.name(x)}, no Job pod")
            for j in graph.neighbours(i):
                y = d.view[j]
                if not self.reached(x, y, j, d.seq) if x else not self._any_reached(i, j, d.seq):
                    edge = f"{self.name(x) if x else f'any {i}'} -> {self.name(y) if y else j}"
                    out.append(f"{by} released at {when}: edge {edge} not proven")
        return out

    def _any_reached(self, i: int, j: int, seq: int) -> bool:
        """Some instance of ``i`` reached some instance of ``j`` (a probe without a hello)."""
        return any(
            self._reached_index(p.instance, j, seq)
            for p in self.procs.values()
            if p.index == i and p.job_pod
        )

    def _arrived(self, d: Decision, index: int, member: str) -> tuple[list[str], set[str]]:
        """Whether ``member`` (any instance of ``index`` if "") arrived at ``d.by`` with
        ``d.digest`` on a session still live there: the problems, and the instances that did."""
        ended: list[Session] = []
        arrived: set[str] = set()
        for s in self.truth.by_server.get(d.by, ()):
            client = self.procs[s.client]
            if s.server != d.by or client.index != index or member not in ("", client.instance):
                continue
            if any(seq < d.seq and view == d.digest for seq, view in s.arrivals):
                if s.ended is None or s.ended > d.seq:
                    arrived.add(s.client)
                else:
                    ended.append(s)
        if arrived:
            return [], arrived
        counted = self.name(member) if member else f"any {index}"
        head = f"{self.name(d.by)} released at {self.when(d.seq)} counting {counted}"
        if ended:
            lost = self.when(min(s.ended for s in ended if s.ended is not None))
            return [f"{head}, whose arrival came on a session that had ended at {lost}"], arrived
        return [f"{head}, which had not arrived with that view"], arrived

    def acks(self, d: Decision) -> list[str]:
        """A coordinator that lingers leaves once every member acked, or at its linger bound."""
        process, left = self.procs[d.by], self.truth.left.get(d.by)
        if process.linger is None or left is None:
            return []
        acked = {
            self.procs[s.client].index
            for s in self.truth.by_server.get(d.by, ())
            if s.server == d.by and s.acked is not None and s.acked <= left
        }
        bound = self.truth.at(d.seq) + process.linger
        if acked >= self.tree.children(0) or self.truth.at(left) >= bound:
            return []
        return [f"{self.name(d.by)} left at {self.when(left)} before every ack and its linger"]

    # --- every instance released -----------------------------------------------------------------
    def releases(self) -> list[str]:
        out = []
        for instance, verdict in self.truth.verdicts.items():
            if not verdict.released or not self.job_pod(instance):
                continue
            index, seq, who = self.procs[instance].index, verdict.seq, self.name(instance)
            before = [d for d in self.decisions if d.seq <= seq]
            if any(d.view is not None and d.view[index] in (instance, "") for d in before):
                continue  # counted
            if not before and not verdict.alone:
                out.append(f"{who} released at {self.when(seq)}; no coordinator had decided")
            missing = [i for i in self.targets(index) if not self._reached_index(instance, i, seq)]
            if missing:
                out.append(f"{who} released at {self.when(seq)} before it reached {missing}")
        return out

    def _reached_index(self, listener: str, index: int, seq: int) -> bool:
        return any(
            at <= seq and self.procs[speaker].index == index
            for speaker, at in self.heard[listener].items()
        )

    # --- what no pod of the Job may see --------------------------------------------------------
    def aborts(self) -> list[str]:
        """Only a disagreement among the Job's own pods may abort one of them."""
        pods = [p for p in self.procs.values() if p.job_pod]
        if len({p.says for p in pods}) > 1:
            return []
        return [
            f"{self.name(p.instance)} aborted although every pod of the Job agrees"
            for p in pods
            if (v := self.truth.verdicts.get(p.instance)) is not None and not v.released
        ]

    def cuts(self) -> list[str]:
        out = []
        for s in self.truth.sessions:
            if s.closed is not None and self._admitted_and_current(s, s.closed):
                out.append(
                    f"{self.name(s.server)} closed the session of {self.name(s.client)} at "
                    f"{self.when(s.closed)}: admitted, current, and its member alive"
                )
        return out

    def _admitted_and_current(self, s: Session, seq: int) -> bool:
        verdict = self.truth.verdicts.get(s.server)
        member = self.procs[s.client]
        heard = self.truth.heard.get((s.server, s.client))
        return (
            (verdict is None or verdict.seq > seq)
            and member.job_pod
            and _alive(member, seq)
            and heard is not None
            and heard[0] < seq
            and heard[1] == s.address
            and not any(
                p.index == member.index
                and p is not member
                and p.started < seq
                and p.job_pod
                and (_alive(p, seq) or p.started > member.started or self._dialled(p, s, seq))
                for p in self.procs.values()
            )
            and not any(
                o.client == s.client and o.server == s.server and s.opened < o.opened < seq
                for o in self.truth.sessions
            )
        )

    def _dialled(self, other: Process, s: Session, seq: int) -> bool:
        """Another instance of the member's index dialled the same coordinator before ``seq``:
        a coordinator keeps one member session an index, the newest it accepted, whichever
        instance's it is, so closing this one for that is no bound's doing."""
        return any(
            o.client == other.instance and o.server == s.server and o.opened < seq
            for o in self.truth.sessions
        )


def _alive(process: Process, seq: int) -> bool:
    return process.gone is None or process.gone > seq
