"""The agents' I/O tasks on the simulated cluster (cluster.py): ``Contacts.attempt``,
``Contacts.sweep``, ``Contacts.probe_address`` and ``Sessions.dial_coordinator``.

Each is answered from the cluster's pods after the network's delays, and what an answer comes to
is judged by the shipped ``agent.core.answers`` (the reply's identity, a failed handshake, which
address of a name counts, a failed dial), as the runner's tasks judge it: the simulator copies no
decision.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import TYPE_CHECKING

from agent.config.model import ProbeKind
from agent.core.answers import (
    NameAttempt,
    blind,
    dial_failed,
    failed_handshake,
    identity_failure,
)
from agent.core.causes import Cause, Failure
from agent.core.inputs import (
    AddressProbed,
    Attempted,
    Contacted,
    Input,
    LookedUp,
    Opened,
    ProbeResult,
    Reached,
    Resolution,
    Swept,
    Unreached,
)
from agent.io.dnswire import marked_late
from agent.protocol.wire import Hello, Role
from tests.sim import modes
from tests.sim.dns import TIMED_OUT, Server, cut, resolution
from tests.sim.node import End, Node, Pod

if TYPE_CHECKING:
    from tests.sim.cluster import Cluster

__all__ = ["Tasks"]


class Tasks:
    def __init__(self, cluster: Cluster) -> None:
        self.c = cluster
        #: cluster DNS that can fall behind (None: it answers every query at once)
        self.server: Server | None = None

    def _waits(self, src: Node, addresses: tuple[str, ...] = ()) -> float | None:
        """How long the query ``src`` is about to send waits for its answer (0 when it reuses
        ``addresses``: none is sent); None: the server never answers it in time, and the query,
        counted here, is not resolved."""
        if addresses or self.server is None:
            return 0.0
        if (wait := self.server.wait(self.c.now, src.me.index)) is None:
            src.queries += 1
            self.c.asked[src.me.index] += 1
        return wait

    def _late(self, answer: Resolution, wait: float) -> Resolution:
        """``answer`` as the resolver gives it after ``wait``: marked late past
        ``dns_timeout`` (``agent.io.dnswire.marked_late``)."""
        return marked_late(answer, wait, self.c.timing.dns_timeout)

    def resolve(self, src: Node, index: int) -> list[Pod]:
        """The pods peer ``index``'s name lists, as ``src``'s resolver sees it (one query)."""
        src.queries += 1
        self.c.asked[src.me.index] += 1
        return self.c.view_of(src).name(self.c.pods_of.get(index, ()), index, self.c.now)

    def _pod_at(self, address: str) -> Pod | None:
        """The pod that has ``address`` now (the last one given it), whatever its index."""
        return self.c.pod_at.get(address)

    def _resolve_or_reuse(self, src: Node, index: int, addresses: tuple[str, ...]) -> list[Pod]:
        """The pods a name resolves to, or those at ``addresses`` when the core reuses the
        addresses that refused a moment ago (``agent.core.refused``): no query then."""
        if not addresses:
            return self.resolve(src, index)
        return [p for a in addresses if (p := self._pod_at(a)) is not None]

    def _served(self, target: Node, src: Node, when: float, role: Role = Role.PROBE) -> None:
        """``serve`` completed a handshake: the core hears who said hello, from where."""
        hello = Hello(src.me, role, "sim", src.agent.released)  # by position: no binding
        contacted = Contacted(hello, src.pod.address)
        self.c.post(target, when, lambda: target.feed(contacted))
        self.c.at(when, lambda: modes.heard(target, src))  # the leader's end (``--exit-led-by``)

    def _result(
        self, src: Node, result: ProbeResult, event: Input, pod: Pod | None
    ) -> Callable[[], None]:
        """Deliver a probe's ``event`` to ``src``, noting whom it heard in the record: the
        instance that said hello, or with a probe that says none, the agent of ``src``'s barrier
        in the pod that answered (the checker reads such a record per index)."""

        def deliver() -> None:
            if isinstance(result, Reached) and pod is not None:
                speaker = result.instance or self._blind_speaker(src, pod)
                if speaker:
                    src.truth.hello_heard(src.me.instance, speaker, pod.address, self.c.now)
            src.feed(event)

        return deliver

    def _blind_speaker(self, src: Node, pod: Pod) -> str:
        """Whom a probe that says no hello reached, as the record names it: the pod, read per
        index (it answers a ping or its workload's port whatever its agent does), under the
        latest agent of ``src``'s barrier that ran in it, else its latest agent process (whose
        later barriers keep its instance id: an exit or named barrier not begun there yet),
        entered in ``src``'s record as an agent of that index that has done nothing yet."""
        ran = [n for n in reversed(self.c.nodes) if n.pod is pod]
        same = [n for n in ran if n.me.barrier == src.me.barrier]
        node = next(iter(same or ran), None)
        if node is None:
            return ""
        if node.me.instance not in src.truth.processes:
            src.truth.start(
                node.me, job_pod=not pod.outsider, linger=None, now=self.c.now, instances=False
            )
        return node.me.instance

    def _connect_failure(self, src: Node, pod: Pod) -> Failure | None:
        """Why a connect from ``src`` to ``pod`` fails (``probes.connect``), or None: a
        partition times out (``Timing.connect_timeout``), a pod without an agent refuses."""
        port = src.me.port
        if (src.me.index, pod.index) in self.c.blocked:
            return Failure(f"connect to port {port} timed out", Cause.CONNECT_TIMEOUT)
        if pod.target(src.me) is None:
            return Failure(f"connect to port {port}: refused", Cause.CONNECT_REFUSED)
        return None

    def _blind(self, src: Node, pod: Pod) -> tuple[ProbeResult, float]:
        """A probe that says no hello (``probes.probe``): ``dns`` asks nothing more, ``icmp``
        pings the pod, ``tcp:PORT`` connects to its workload's port; both answered while the
        pod is there, whatever its agent does."""
        kind, took, timeout = (
            src.agent.config.probe,
            2 * self.c.delay(),
            self.c.timing.connect_timeout,
        )
        if kind.kind is ProbeKind.DNS:
            return blind(None), 0.0
        blocked = (src.me.index, pod.index) in self.c.blocked
        if kind.kind is ProbeKind.ICMP:
            if blocked or not pod.answers(self.c.now):
                return blind(Failure("no echo reply (timeout)", Cause.NO_ECHO)), timeout
            return blind(None), took
        if blocked:
            why = Failure(f"connect to port {kind.port} timed out", Cause.CONNECT_TIMEOUT)
            return blind(why), timeout
        if not pod.answers(self.c.now):
            refused = Failure(f"connect to port {kind.port}: refused", Cause.CONNECT_REFUSED)
            return blind(refused), took
        return blind(None), took

    def _hello(
        self, src: Node, pod: Pod, expected: int | None, *, hello: bool = False
    ) -> tuple[ProbeResult, float]:
        """One probe of one address: connect, say hello, judge the reply (``probes.probe``);
        with the pod's ``--probe`` unless ``hello`` asks for the agent's hello."""
        if not (hello or src.agent.config.probe.says_hello):
            return self._blind(src, pod)
        took, target = 2 * self.c.delay(), pod.target(src.me)
        if (refused := self._connect_failure(src, pod)) is not None:
            timed_out = refused.cause is Cause.CONNECT_TIMEOUT
            return Unreached(refused), self.c.timing.connect_timeout if timed_out else took
        assert target is not None
        self._served(target, src, self.c.departs(src.pod) + took / 2)
        failure = identity_failure(src.me, target.me, expected_index=expected)
        if failure is not None:  # client_handshake raises; probe says what that comes to
            return failed_handshake(failure), took
        return Reached(target.me.index, target.me.instance, target.agent.released), took

    def attempt(
        self,
        src: Node,
        index: int,
        instance: str = "",
        addresses: tuple[str, ...] = (),
        *,
        hello: bool = False,
    ) -> None:
        """``Contacts.attempt``: resolve one name (or reuse ``addresses``), probe its addresses
        until the shipped ``NameAttempt`` says one settles it."""
        if index in src.attempting:  # Reach keeps one attempt per peer in flight
            self.c.violations.append(f"{src} attempts {index} twice at once")
        src.attempting.add(index)
        src.opened()
        if (wait := self._waits(src, addresses)) is None:
            event = NameAttempt(index, instance, TIMED_OUT).outcome()
            when = self.c.departs(src.pod) + self.c.timing.dns_answer_wait
            self.c.post(src, when, self._attempted(src, index, None, event))
            return
        pods = self._resolve_or_reuse(src, index, addresses)
        attempt, took = NameAttempt(index, instance, self._late(resolution(pods), wait)), wait
        for pod in pods:
            result, t = self._hello(src, pod, index, hello=hello)
            took += t
            if attempt.probed(pod.address, result):
                break
        else:
            took += self.c.delay()
        event = attempt.outcome()
        settled = next((p for p in pods if p.address == event.address), None)
        self.c.post(
            src, self.c.departs(src.pod) + took, self._attempted(src, index, settled, event)
        )

    def _attempted(
        self, src: Node, index: int, pod: Pod | None, event: Attempted
    ) -> Callable[[], None]:
        deliver = self._result(src, event.result, event, pod)

        def done() -> None:
            src.attempting.discard(index)
            deliver()

        return done

    def sweep(self, src: Node) -> None:
        """``Contacts.sweep``: the Service's own name lists every published pod (as ``src``'s
        resolver sees it), cut short past what one answer holds, or at the cluster's ``cut``."""
        if (wait := self._waits(src)) is None:
            when = self.c.departs(src.pod) + self.c.timing.dns_answer_wait
            self.c.post(src, when, lambda: src.feed(Swept(TIMED_OUT)))
            return
        src.queries += 1
        self.c.asked[src.me.index] += 1
        answer = self.c.answers.answer(self.c.view_of(src), self.c.pods, self.c.now)
        answer = self._late(cut(answer, self.c.cut), wait)
        when = self.c.departs(src.pod) + wait + 2 * self.c.delay()
        self.c.post(src, when, lambda: src.feed(Swept(answer)))

    def lookup(self, src: Node, index: int) -> None:
        """``Contacts.lookup``: one name, nothing probed."""
        if (wait := self._waits(src)) is None:
            answer, wait = LookedUp(index, TIMED_OUT), self.c.timing.dns_answer_wait
        else:
            answer = LookedUp(index, self._late(resolution(self.resolve(src, index)), wait))
        when = self.c.departs(src.pod) + wait + 2 * self.c.delay()
        self.c.post(src, when, lambda: src.feed(answer))

    def probe_address(self, src: Node, address: str) -> None:
        """``Contacts.probe_address``: whoever answers at ``address`` says who it is."""
        pod = self._pod_at(address)
        result: ProbeResult
        src.probing += 1
        src.opened()
        if pod is None:
            gone = Failure(f"connect to port {src.me.port}: No route to host", Cause.UNREACHABLE)
            result, took = Unreached(gone), self.c.timing.connect_timeout
        else:
            result, took = self._hello(src, pod, None)
        deliver = self._result(src, result, AddressProbed(address, result), pod)

        def done() -> None:
            src.probing -= 1
            deliver()

        self.c.post(src, self.c.departs(src.pod) + took, done)

    def dial(self, src: Node, addresses: tuple[str, ...] = (), index: int = 0) -> None:
        """``Sessions.dial_coordinator``: resolve pod ``index`` (its coordinator) afresh (or
        reuse ``addresses``), open a session with the first address whose handshake succeeds."""
        if (wait := self._waits(src, addresses)) is None:
            failed = dial_failed(TIMED_OUT, [])
            when = self.c.departs(src.pod) + self.c.timing.dns_answer_wait
            self.c.post(src, when, lambda: src.feed(failed))
            return
        pods, problems = self._resolve_or_reuse(src, index, addresses), []
        handshakes: list[Failure] = []
        t = self.c.departs(src.pod) + wait
        causes: list[Cause | None] = []  # why each address failed (``dial_failed``)
        for pod in pods:
            server = pod.target(src.me)
            if (refused := self._connect_failure(src, pod)) is not None:
                problems.append(f"{pod.address}: {refused.reason}")
                causes.append(refused.cause)
                if refused.cause is Cause.CONNECT_TIMEOUT:
                    t += self.c.timing.connect_timeout
                continue
            assert server is not None
            t += self.c.delay()  # our hello reaches the server: it answers, then posts _Opened
            mine = End(src, next(src.next_conn), last=t, opened_at=math.inf)
            theirs = End(server, next(server.next_conn), last=t, opened_at=t, peer=mine)
            mine.peer = theirs
            if server.me.barrier == src.me.barrier:  # else the client's handshake fails
                server.truth.session(
                    theirs,
                    client=src.me.instance,
                    server=server.me.instance,
                    address=src.pod.address,
                    now=self.c.now,
                )
            server.channels[theirs.conn] = theirs
            server.opened()
            server.sessions += 1
            hello = Hello(src.me, Role.MEMBER, "sim", src.agent.released)
            self._served(server, src, t, Role.MEMBER)
            opened = Opened(theirs.conn, hello, False, src.pod.address)
            self.c.post(server, t, functools.partial(server.feed, opened))
            t += self.c.delay()  # its reply reaches us
            failure = identity_failure(src.me, server.me, expected_index=index)
            if failure is not None:  # client_handshake fails and we close
                problems.append(f"{pod.address}: {failure.reason}")
                handshakes.append(failure)
                causes.append(failure.cause)
                mine.open, mine.last = False, t
                self.c.fin(mine)
                continue
            src.channels[mine.conn] = mine
            src.opened()
            src.sessions += 1
            theirs.last = mine.opened_at = t  # what the server sends comes after our _Opened
            reply = Hello(server.me, Role.REPLY, "sim", server.agent.released)
            self.c.post(src, t, functools.partial(src.feed, Contacted(reply, pod.address, True)))
            self.c.post(
                src, t, functools.partial(src.feed, Opened(mine.conn, reply, True, pod.address))
            )
            return
        answer = resolution(pods)
        failed = dial_failed(answer, problems, causes, handshakes)
        self.c.post(src, t + self.c.delay(), lambda: src.feed(failed))
