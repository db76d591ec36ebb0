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

from agent.core.answers import NameAttempt, dial_failed, failed_handshake, identity_failure
from agent.core.causes import Cause, Failure
from agent.core.inputs import (
    AddressProbed,
    Attempted,
    Contacted,
    LookedUp,
    Opened,
    ProbeResult,
    Reached,
    Resolution,
    Swept,
    Unreached,
)
from agent.protocol.wire import Hello, Role
from tests.sim.node import End, Node, Pod

if TYPE_CHECKING:
    from tests.sim.cluster import Cluster

__all__ = ["Tasks"]


class Tasks:
    def __init__(self, cluster: Cluster) -> None:
        self.c = cluster

    def resolve(self, index: int) -> list[Pod]:
        return [
            p
            for p in self.c.pods
            if p.index == index and p.published_at <= self.c.now < p.withdrawn_at
        ]

    def _pod_at(self, address: str) -> Pod | None:
        """The pod that has ``address`` now (the last one given it), whatever its index."""
        return next((p for p in reversed(self.c.pods) if p.address == address), None)

    def _resolve_or_reuse(self, index: int, addresses: tuple[str, ...]) -> list[Pod]:
        """The pods a name resolves to, or those at ``addresses`` when the core reuses the
        addresses that refused a moment ago (``agent.core.refused``): no query then."""
        if not addresses:
            return self.resolve(index)
        return [p for a in addresses if (p := self._pod_at(a)) is not None]

    def _served(self, target: Node, src: Node, when: float, role: Role = Role.PROBE) -> None:
        """``serve`` completed a handshake: the core hears who said hello, from where."""
        hello = Hello(src.me, role, "sim", released=src.agent.released)
        contacted = Contacted(hello, src.pod.address)
        self.c.post(target, when, lambda: target.feed(contacted))

    def _result(
        self, src: Node, result: ProbeResult, event: Attempted | AddressProbed
    ) -> Callable[[], None]:
        """Deliver a probe's ``event`` to ``src``, noting whom it heard (the ground truth)."""

        def deliver() -> None:
            if isinstance(result, Reached) and result.instance:
                truth = self.c.truth
                truth.hello_heard(src.me.instance, result.instance, event.address, self.c.now)
            src.feed(event)

        return deliver

    def _connect_failure(self, src: Node, pod: Pod) -> Failure | None:
        """Why a connect from ``src`` to ``pod`` fails (``probes.connect``), or None: a
        partition times out (``Timing.connect_timeout``), a pod without an agent refuses."""
        port = src.me.port
        if (src.me.index, pod.index) in self.c.blocked:
            return Failure(f"connect to port {port} timed out", Cause.CONNECT_TIMEOUT)
        if pod.node is None or not pod.node.alive:
            return Failure(f"connect to port {port}: refused", Cause.CONNECT_REFUSED)
        return None

    def _hello(self, src: Node, pod: Pod, expected: int | None) -> tuple[ProbeResult, float]:
        """One probe of one address: connect, say hello, judge the reply (``probes.probe``)."""
        took, target = 2 * self.c.delay(), pod.node
        if (refused := self._connect_failure(src, pod)) is not None:
            timed_out = refused.cause is Cause.CONNECT_TIMEOUT
            return Unreached(refused), self.c.timing.connect_timeout if timed_out else took
        assert target is not None
        self._served(target, src, self.c.now + took / 2)
        failure = identity_failure(src.me, target.me, expected_index=expected)
        if failure is not None:  # client_handshake raises; probe says what that comes to
            return failed_handshake(failure), took
        return Reached(target.me.index, target.me.instance, target.agent.released), took

    def _resolution(self, pods: list[Pod]) -> Resolution:
        """What DNS answers for a name whose published pods are ``pods``."""
        if not pods:
            return Resolution(failure=Failure("NXDOMAIN", Cause.NXDOMAIN))
        return Resolution(tuple(p.address for p in pods))

    def attempt(
        self, src: Node, index: int, instance: str = "", addresses: tuple[str, ...] = ()
    ) -> None:
        """``Contacts.attempt``: resolve one name (or reuse ``addresses``), probe its addresses
        until the shipped ``NameAttempt`` says one settles it."""
        if index in src.attempting:  # Reach keeps one attempt per peer in flight
            self.c.violations.append(f"{src} attempts {index} twice at once")
        src.attempting.add(index)
        pods = self._resolve_or_reuse(index, addresses)
        attempt, took = NameAttempt(index, instance, self._resolution(pods)), 0.0
        for pod in pods:
            result, t = self._hello(src, pod, index)
            took += t
            if attempt.probed(pod.address, result):
                break
        else:
            took += self.c.delay()
        event = attempt.outcome()
        self.c.post(src, self.c.now + took, self._attempted(src, index, event.result, event))

    def _attempted(
        self, src: Node, index: int, result: ProbeResult, event: Attempted
    ) -> Callable[[], None]:
        deliver = self._result(src, result, event)

        def done() -> None:
            src.attempting.discard(index)
            deliver()

        return done

    def sweep(self, src: Node) -> None:
        """``Contacts.sweep``: the Service's own name lists every published pod."""
        pods = [p for p in self.c.pods if p.published_at <= self.c.now < p.withdrawn_at]
        answer = self._resolution(pods)
        self.c.post(src, self.c.now + 2 * self.c.delay(), lambda: src.feed(Swept(answer)))

    def lookup(self, src: Node, index: int) -> None:
        """``Contacts.lookup``: one name, nothing probed."""
        answer = LookedUp(index, self._resolution(self.resolve(index)))
        self.c.post(src, self.c.now + 2 * self.c.delay(), lambda: src.feed(answer))

    def probe_address(self, src: Node, address: str) -> None:
        """``Contacts.probe_address``: whoever answers at ``address`` says who it is."""
        pod = self._pod_at(address)
        result: ProbeResult
        if pod is None:
            gone = Failure(f"connect to port {src.me.port}: No route to host", Cause.UNREACHABLE)
            result, took = Unreached(gone), self.c.timing.connect_timeout
        else:
            result, took = self._hello(src, pod, None)
        self.c.post(
            src, self.c.now + took, self._result(src, result, AddressProbed(address, result))
        )

    def dial(self, src: Node, addresses: tuple[str, ...] = ()) -> None:
        """``Sessions.dial_coordinator``: resolve index 0 afresh (or reuse ``addresses``), open a
        session with the first address whose handshake succeeds."""
        pods, problems, t = self._resolve_or_reuse(0, addresses), [], self.c.now
        refused_all = True
        for pod in pods:
            server = pod.node
            if (refused := self._connect_failure(src, pod)) is not None:
                problems.append(f"{pod.address}: {refused.reason}")
                refused_all = refused_all and refused.cause is Cause.CONNECT_REFUSED
                if refused.cause is Cause.CONNECT_TIMEOUT:
                    t += self.c.timing.connect_timeout
                continue
            assert server is not None
            t += self.c.delay()  # our hello reaches the server: it answers, then posts _Opened
            mine = End(src, next(src.next_conn), last=t, opened_at=math.inf)
            theirs = End(server, next(server.next_conn), last=t, opened_at=t, peer=mine)
            mine.peer = theirs
            self.c.truth.session(
                theirs,
                client=src.me.instance,
                server=server.me.instance,
                address=src.pod.address,
                now=self.c.now,
            )
            server.channels[theirs.conn] = theirs
            hello = Hello(src.me, Role.MEMBER, "sim", released=src.agent.released)
            self._served(server, src, t, Role.MEMBER)
            opened = Opened(theirs.conn, hello, False, src.pod.address)
            self.c.post(server, t, functools.partial(server.feed, opened))
            t += self.c.delay()  # its reply reaches us
            failure = identity_failure(src.me, server.me, expected_index=0)
            if failure is not None:  # client_handshake fails and we close
                problems.append(f"{pod.address}: {failure.reason}")
                refused_all = False
                mine.open, mine.last = False, t
                self.c.fin(mine)
                continue
            src.channels[mine.conn] = mine
            theirs.last = mine.opened_at = t  # what the server sends comes after our _Opened
            reply = Hello(server.me, Role.REPLY, "sim", server.agent.released)
            self.c.post(src, t, functools.partial(src.feed, Contacted(reply, pod.address, True)))
            self.c.post(
                src, t, functools.partial(src.feed, Opened(mine.conn, reply, True, pod.address))
            )
            return
        resolution = self._resolution(pods)
        failed = dial_failed(resolution, problems, resolution.addresses if refused_all else ())
        self.c.post(src, t + self.c.delay(), lambda: src.feed(failed))
