"""Named barriers: "every pod has downloaded the dataset", for any process in any language.

A sidecar answers ``POST /barrier/NAME[?timeout=D]`` on its health port, from its own pod only
(the client's address is loopback or the address it connected to: the same network namespace).
The call returns 200 once every pod's client has asked for ``NAME``; 504 when ``D`` (default:
the sidecar's ``--timeout``), counted from the moment the client asked, passes (with the pods
still missing, or that the sidecar's own start barrier has not passed yet); 409 when the
barrier aborts. ``peer-agent barrier NAME`` is the client for scripts; ``curl -X POST`` works too.

Each name is one more instance of the same barrier core, on the agent's port through
:class:`agent.io.mux.Mux` (``Identity.barrier`` ``named/NAME``), begun by the first client of
the pod that asks, with that client's deadline; a client that asks while it runs waits for it
(at most until its own deadline). Once released it keeps serving, so a pod restarted later (or
a client that asks late) passes at once, as a sidecar's start barrier does.

**Withdrawn**: while a barrier has not released here, it is this pod's request only as long as a
client of the pod waits for it. When the last one leaves (its deadline passed, it closed its
connection, it died), the pod withdraws: its instance ends, its session with the coordinator
closes (so its arrival no longer counts there) and its hellos for ``NAME`` go unanswered, so
the other pods do not pass on this pod until a client of it asks again. A barrier that has
released here stays released: a client that leaves afterwards changes nothing. (A withdrawal
that crosses the coordinator's release on the wire cannot undo it: the other pods pass, and
this pod's client was told it timed out; the window is one message's way.)

Bounded: at most :data:`MAX_NAMES` names at once: a new name beyond that ends the one released
longest ago (it no longer lets a pod restarted later pass at once; said once), and is refused
(429) only when every name is still waiting; at most :data:`MAX_WAITERS` clients wait at once
(more are refused with 429, never one that waits dropped).
"""

from __future__ import annotations

import collections
import dataclasses
import ipaddress
import math
import re
import urllib.parse
from dataclasses import dataclass, field

import anyio
import anyio.abc

from agent.config.model import Config, Outputs
from agent.config.parse import parse_duration
from agent.core.log import LogKind, LogLevel, LogLine, Reporter
from agent.core.outcome import Outcome
from agent.core.seeded import Proof
from agent.errors import BarrierAborted, BarrierTimeout, PeerAgentError, leaf_error
from agent.io.mux import Mux
from agent.io.runner import identity_of, serve_and_wait
from agent.io.supervisor import Supervisor
from agent.io.tcp import TCPStream
from agent.protocol.wire import Identity, named_barrier

__all__ = ["MAX_NAMES", "MAX_WAITERS", "NAME", "NamedBarriers", "named_identity"]

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
MAX_NAMES = 64
MAX_WAITERS = 128


def named_identity(start: Identity, name: str) -> Identity:
    """The identity of barrier ``name``: the same process, in barrier ``named/NAME``."""
    return dataclasses.replace(start, barrier=named_barrier(name))


@dataclass
class _Barrier:
    name: str
    #: its first client's timeout (None: none), and when it ends then (anyio's clock; inf)
    timeout: float | None
    deadline: float
    done: anyio.Event = field(default_factory=anyio.Event)
    how: str = ""
    error: PeerAgentError | None = None
    waiters: int = 0
    #: the instance's own scope: cancelled when the pod withdraws or the name is dropped
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)


def _local(stream: anyio.abc.ByteStream) -> bool:
    """Whether the client is in this pod: from loopback, or from the address it connected to
    (a client in another pod cannot send from this pod's address)."""
    if not isinstance(stream, TCPStream):
        return False
    try:
        peer = ipaddress.ip_address(stream.sock.getpeername()[0])
        mine = ipaddress.ip_address(stream.sock.getsockname()[0])
    except (OSError, ValueError):
        return False
    if isinstance(peer, ipaddress.IPv6Address) and peer.ipv4_mapped is not None:
        peer = peer.ipv4_mapped
    if isinstance(mine, ipaddress.IPv6Address) and mine.ipv4_mapped is not None:
        mine = mine.ipv4_mapped
    return peer.is_loopback or peer == mine


def _not_begun(barrier: _Barrier) -> BarrierTimeout:
    why = f"this pod's sidecar has not passed its start barrier yet: {barrier.name} did not begin"
    return BarrierTimeout(why, missing=(), hints=())


def _answer(barrier: _Barrier) -> tuple[int, bytes]:
    if isinstance(barrier.error, BarrierTimeout):
        # Said with the client's own timeout: the barrier's core counted the time left of it.
        why = str(barrier.error).partition("; ")[2] or str(barrier.error)
        missing = "".join(f"missing {m}\n" for m in barrier.error.missing)
        return 504, f"timed out after {barrier.timeout:g}s; {why}\n{missing}".encode()
    if isinstance(barrier.error, BarrierAborted):
        return 409, f"{barrier.error}\n".encode()
    if barrier.error is not None:
        return 500, f"{barrier.error}\n".encode()
    return 200, f"released: {barrier.how}\n".encode()


class NamedBarriers:
    """Serves named barriers once the start barrier has been passed (``started``)."""

    def __init__(
        self,
        config: Config,
        mux: Mux,
        tg: anyio.abc.TaskGroup,
        *,
        report: Reporter,
        supervisor: Supervisor,
    ) -> None:
        self.config, self.mux, self.tg = config, mux, tg
        self.report, self.supervisor = report, supervisor
        self.started = anyio.Event()
        self._barriers: dict[str, _Barrier] = {}
        self._released: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._waiters = 0
        self._dropped_said = False
        #: where the start barrier reached each peer: every named barrier tries there first
        self._proof: Proof = dict

    def seed(self, proof: Proof) -> None:
        """The start barrier's proof (``agent.core.seeded``), given at its release."""
        self._proof = proof

    async def handle(
        self, name: str, query: str, stream: anyio.abc.ByteStream
    ) -> tuple[int, bytes]:
        """The health server's handler for ``POST /barrier/NAME``: (status, body). Cancelled
        when the client goes away: it stops waiting (and may withdraw the pod's request)."""
        if not _local(stream):
            return 403, b"named barriers are for clients in this pod only\n"
        if not NAME.fullmatch(name):
            return 400, f"bad barrier name {name!r}: use up to 63 of A-Z a-z 0-9 . _ -\n".encode()
        timeout = self.config.timeout
        given = urllib.parse.parse_qs(query).get("timeout")
        if given:
            try:
                timeout = parse_duration(given[0]) or None
            except ValueError as exc:
                return 400, f"timeout: {exc}\n".encode()
        if self._waiters >= MAX_WAITERS:
            return 429, f"too many clients waiting (at most {MAX_WAITERS})\n".encode()
        deadline = anyio.current_time() + timeout if timeout else math.inf
        barrier = self._barriers.get(name) or self._begin(name, timeout, deadline)
        if barrier is None:
            return 429, f"too many barrier names waiting (at most {MAX_NAMES})\n".encode()
        return await self._wait(barrier, deadline, timeout)

    async def _wait(
        self, barrier: _Barrier, deadline: float, timeout: float | None
    ) -> tuple[int, bytes]:
        """One client waits for ``barrier``, until ``deadline`` at the latest."""
        barrier.waiters += 1
        self._waiters += 1
        try:
            # The barrier's own deadline answers at its own (with the pods missing); a client
            # with an earlier one gives up on its own.
            with anyio.move_on_after(deadline - anyio.current_time()) as waited:
                if deadline >= barrier.deadline:
                    waited.deadline = math.inf
                await barrier.done.wait()
            if waited.cancelled_caught:
                return 504, (
                    f"timed out after {timeout:g}s waiting for barrier {barrier.name}, which "
                    "this pod's first client of it began (it waits on for that client)\n"
                ).encode()
            return _answer(barrier)
        finally:
            barrier.waiters -= 1
            self._waiters -= 1
            if not barrier.waiters and not barrier.done.is_set():
                self._withdraw(barrier)

    def _begin(self, name: str, timeout: float | None, deadline: float) -> _Barrier | None:
        if len(self._barriers) >= MAX_NAMES and not self._drop_released():
            return None
        barrier = self._barriers[name] = _Barrier(name, timeout, deadline)
        self.tg.start_soon(self._run, barrier)
        return barrier

    def _withdraw(self, barrier: _Barrier) -> None:
        """No client of this pod waits any more: the pod's request is withdrawn."""
        barrier.scope.cancel()
        if self._barriers.get(barrier.name) is barrier:
            del self._barriers[barrier.name]
        self.report(
            LogLine(
                LogKind.WARNING,
                f"barrier {barrier.name}: withdrawn: no client of this pod waits for it any more "
                "(the other pods do not pass on this pod until one asks again)",
                level=LogLevel.WARNING,
            )
        )

    def _drop_released(self) -> bool:
        """Make room: the name released longest ago stops serving (False: none released)."""
        if not self._released:
            return False
        name, _ = self._released.popitem(last=False)
        self._barriers.pop(name).scope.cancel()
        if not self._dropped_said:
            self._dropped_said = True
            self.report(
                LogLine(
                    LogKind.WARNING,
                    f"{MAX_NAMES} barrier names in use: for each new one, the one "
                    f"released longest ago ({name} now) stops serving (a pod restarted later "
                    "no longer passes it at once; said once)",
                    level=LogLevel.WARNING,
                )
            )
        return True

    async def _run(self, barrier: _Barrier) -> None:
        with barrier.scope:
            with anyio.move_on_after(barrier.deadline - anyio.current_time()):
                await self.started.wait()  # meanwhile the start barrier answers strangers
            if not self.started.is_set():
                self._fail(barrier, _not_begun(barrier))
                return
            try:
                await self._serve(barrier)
            except (PeerAgentError, BaseExceptionGroup) as raised:
                error = leaf_error(raised)
                if not isinstance(error, PeerAgentError):
                    raise
                self._fail(barrier, error)

    def _fail(self, barrier: _Barrier, error: PeerAgentError) -> None:
        # Forgotten: a client asking again starts the barrier anew.
        if self._barriers.get(barrier.name) is barrier:
            del self._barriers[barrier.name]
        barrier.error = error
        barrier.done.set()

    async def _serve(self, barrier: _Barrier) -> None:
        name = barrier.name
        me = named_identity(identity_of(self.config), name)
        # the deadline counts from the first client's request, not from now
        remaining = barrier.deadline - anyio.current_time()
        timeout = None if barrier.timeout is None else max(remaining, 0.001)
        config = dataclasses.replace(self.config, timeout=timeout, outputs=Outputs())

        def prefixed(event: LogLine) -> None:
            self.report(dataclasses.replace(event, message=f"barrier {name}: {event.message}"))

        async def keep_serving(outcome: Outcome) -> None:
            barrier.how = outcome.how
            self._released[name] = None
            barrier.done.set()
            await anyio.sleep_forever()  # a pod restarted later passes at once

        await serve_and_wait(
            config,
            report=prefixed,
            supervisor=self.supervisor,
            mux=self.mux,
            me=me,
            after_release=keep_serving,
            seed=self._proof(),  # as it is now: a pod replaced since is asked by name
        )
