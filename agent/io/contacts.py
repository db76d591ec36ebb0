"""Discovery and serving: reaching peers by name or address, and answering who contacts us.

These tasks change no state of their own: each posts what happened into the runner's queue,
where the one loop feeds it to the pure core. A member's session is handed to ``sessions``.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Awaitable, Callable

import anyio
import anyio.abc
from anyio.streams.memory import MemoryObjectSendStream

from agent.config.model import Config
from agent.core.answers import NameAttempt
from agent.core.inputs import (
    AddressProbed,
    Contacted,
    ContactRefused,
    Input,
    ProbeResult,
    Resolution,
    Swept,
)
from agent.core.timing import DEFAULT_TIMING, Timing
from agent.errors import WireError
from agent.io.channel import Channel, HandshakeFailed, server_handshake
from agent.io.limits import MAX_HANDSHAKING
from agent.io.probes import probe
from agent.io.sessions import Sessions
from agent.protocol.wire import Identity, Role

__all__ = ["Contacts"]


def _plain(address: str) -> str:
    """A dual-stack listener sees IPv4 peers as ``::ffff:a.b.c.d`` (as the kernel's address is
    written by ``getpeername``); DNS lists ``a.b.c.d``. A string test, not ``ipaddress``: it
    runs for every contact."""
    return address[7:] if address.startswith("::ffff:") and "." in address else address


class Contacts:
    def __init__(
        self,
        config: Config,
        me: Identity,
        resolve: Callable[[str], Awaitable[Resolution]],
        post: MemoryObjectSendStream[Input],
        sessions: Sessions,
        released: Callable[[], bool],
        counts: collections.Counter[str],
        timing: Timing = DEFAULT_TIMING,
    ) -> None:
        """``released``: whether the barrier has been released here (told to every contact
        in our hello); ``counts``: what this agent did, for the release line (DNS lookups,
        probes, sessions, messages)."""
        self.config, self.me, self.resolve, self.post = config, me, resolve, post
        self.sessions, self.released, self.counts, self.timing = sessions, released, counts, timing
        #: contacts still in their handshake, oldest first, each cancellable
        self._handshaking: collections.OrderedDict[int, anyio.CancelScope] = (
            collections.OrderedDict()
        )

    async def attempt(
        self, index: int, instance: str = "", addresses: tuple[str, ...] = ()
    ) -> None:
        """Resolve peer ``index`` afresh (unless the core gives the ``addresses`` to try) and
        probe its addresses until one settles the attempt (``agent.core.answers.NameAttempt``
        says which)."""
        if addresses:
            resolution = Resolution(addresses)
        else:
            resolution = await self._resolve(self.config.topology.fqdn(index))
        attempt = NameAttempt(index, instance, resolution)
        for address in resolution.addresses:
            if attempt.probed(address, await self._probe(address, index)):
                break
        await self.post.send(attempt.outcome())

    async def _resolve(self, name: str) -> Resolution:
        self.counts["dns_lookups"] += 1
        return await self.resolve(name)

    async def _probe(self, address: str, target: int | None) -> ProbeResult:
        self.counts["probes"] += 1
        return await probe(
            self.config.probe,
            address,
            me=self.me,
            target=target,
            token=self.config.token,
            released=self.released(),
            source=self.config.listen,
            timing=self.timing,
        )

    async def sweep(self) -> None:
        """One bulk round: every address the Service publishes, in one query."""
        service = self.config.topology.service_fqdn
        assert service is not None  # bulk discovery (the only sweeper) needs the Service
        await self.post.send(Swept(await self._resolve(service)))

    async def probe_address(self, address: str) -> None:
        """One address of a bulk round (run by the runner's ProbeQueue, which bounds them)."""
        result = await self._probe(address, None)
        # The queue is unbounded: no need to yield once more per probe to post its result.
        self.post.send_nowait(AddressProbed(address, result))

    async def serve(self, stream: anyio.abc.SocketStream) -> None:
        """One incoming connection: a probe (answered, then closed) or a member's session."""
        # When full, drop the contact stalled longest in its handshake, not the newcomer:
        # otherwise a few hundred silent connections would lock real peers out until they time out.
        if len(self._handshaking) >= MAX_HANDSHAKING:
            self._handshaking.popitem(last=False)[1].cancel()
            self.counts["contacts_dropped"] += 1
        key = next(self.sessions.conns)
        self.counts["contacts_answered"] += 1
        # One scope for the handshake's deadline and for dropping it (a scope costs more than
        # the handshake's receive): lifted once the contact is a peer.
        deadline = anyio.current_time() + self.timing.handshake_timeout
        with anyio.CancelScope(deadline=deadline) as scope:
            self._handshaking[key] = scope
            try:
                await self._serve(stream, key, scope)
            finally:
                self._handshaking.pop(key, None)
        if scope.cancelled_caught:
            await stream.aclose()

    async def _serve(
        self, stream: anyio.abc.SocketStream, key: int, handshake: anyio.CancelScope
    ) -> None:
        channel = Channel(stream)
        async with stream:
            address = _plain(channel.peer_address)
            try:
                hello = await server_handshake(
                    channel,
                    me=self.me,
                    token=self.config.token,
                    released=self.released(),
                    timeout=None,  # the scope's deadline
                )
            except HandshakeFailed as exc:
                await self.post.send(ContactRefused(exc.reason))
                return
            except WireError:
                return  # garbage, a port scanner, a closed connection: costs only itself
            self._handshaking.pop(key, None)  # a peer now: never dropped for a newcomer
            handshake.deadline = math.inf
            # The queue is unbounded: posting needs no turn of the loop of its own (one
            # answered probe is a dozen turns; N agents answer N-1 probes each).
            self.post.send_nowait(Contacted(hello, address))
            if hello.role is Role.MEMBER:
                # Numbered when accepted, not now: a member's connection that timed out at its
                # end may finish its handshake here after the one the member retried with, and
                # must not pass for the newer session (Coordinator.joined keeps the newer).
                await self.sessions.carry(channel, hello, key, dialled=False, address=address)
