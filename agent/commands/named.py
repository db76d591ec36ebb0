"""Named barriers: "every pod has downloaded the dataset", for any process in any language.

A sidecar answers ``POST /barrier/NAME[?timeout=D]`` on its health port, from its own pod only
(the client's address is loopback or the address it connected to: the same network namespace).
The call returns 200 once every pod's client has asked for ``NAME``; 504 when ``D`` (default:
the sidecar's ``--timeout``) passes, with the pods still missing; 409 when the barrier aborts.
``peer-agent barrier NAME`` is the client for scripts; ``curl -X POST`` works too.

Each name is one more instance of the same barrier core, on the agent's port through
:class:`agent.io.mux.Mux` (uid suffixed ``/b/NAME``). Once released it keeps serving, so a pod
restarted later (or a client that asks late) passes at once, as a sidecar's start barrier does.
Bounded: at most :data:`MAX_NAMES` names; the waiting clients are bounded by the health
server's connection limit.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import urllib.parse
from dataclasses import dataclass, field

import anyio
import anyio.abc

from agent.config.model import Config, Outputs
from agent.config.parse import parse_duration
from agent.core.log import LogLine, Reporter
from agent.core.outcome import Outcome
from agent.errors import BarrierAborted, BarrierTimeout, PeerAgentError, leaf_error
from agent.io.mux import Mux
from agent.io.runner import identity_of, serve_and_wait
from agent.io.supervisor import Supervisor
from agent.io.tcp import TCPStream
from agent.protocol.wire import Identity

__all__ = ["MAX_NAMES", "NAME", "NamedBarriers", "named_identity"]

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
MAX_NAMES = 64
_UID_LIMIT = 128


def named_identity(start: Identity, name: str) -> Identity:
    """The identity of barrier ``name``: another instance of the start barrier's."""
    suffix = f"/b/{name}"
    return dataclasses.replace(start, uid=start.uid[: _UID_LIMIT - len(suffix)] + suffix)


@dataclass
class _Barrier:
    done: anyio.Event = field(default_factory=anyio.Event)
    how: str = ""
    error: PeerAgentError | None = None


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


class NamedBarriers:
    """Serves named barriers once the start barrier has been passed (``start_released``)."""

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

    async def handle(
        self, name: str, query: str, stream: anyio.abc.ByteStream
    ) -> tuple[int, bytes]:
        """The health server's handler for ``POST /barrier/NAME``: (status, body)."""
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
        barrier = self._barriers.get(name)
        if barrier is None:
            if len(self._barriers) >= MAX_NAMES:
                return 429, f"too many barrier names (at most {MAX_NAMES})\n".encode()
            barrier = self._barriers[name] = _Barrier()
            self.tg.start_soon(self._run, name, barrier, timeout)
        await barrier.done.wait()
        if isinstance(barrier.error, BarrierTimeout):
            missing = "".join(f"missing {m}\n" for m in barrier.error.missing)
            return 504, f"{barrier.error}\n{missing}".encode()
        if isinstance(barrier.error, BarrierAborted):
            return 409, f"{barrier.error}\n".encode()
        if barrier.error is not None:
            return 500, f"{barrier.error}\n".encode()
        return 200, f"released: {barrier.how}\n".encode()

    async def _run(self, name: str, barrier: _Barrier, timeout: float | None) -> None:
        await self.started.wait()  # the start barrier's instance answers strangers meanwhile
        me = named_identity(identity_of(self.config), name)
        config = dataclasses.replace(self.config, timeout=timeout, outputs=Outputs())

        def prefixed(event: LogLine) -> None:
            self.report(dataclasses.replace(event, message=f"barrier {name}: {event.message}"))

        async def keep_serving(outcome: Outcome) -> None:
            barrier.how = outcome.how
            barrier.done.set()
            await anyio.sleep_forever()  # a pod restarted later passes at once

        try:
            await serve_and_wait(
                config,
                report=prefixed,
                supervisor=self.supervisor,
                mux=self.mux,
                me=me,
                after_release=keep_serving,
            )
        except (PeerAgentError, BaseExceptionGroup) as raised:
            error = leaf_error(raised)
            if not isinstance(error, PeerAgentError):
                raise
            # Forgotten: a client asking again starts the barrier anew.
            del self._barriers[name]
            barrier.error = error
            barrier.done.set()
