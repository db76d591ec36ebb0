"""Discovery and serving: reaching peers by name or address, and answering who contacts us.

These tasks change no state of their own: each posts what happened into the runner's queue,
where the one loop feeds it to the pure core. A member's session is handed to ``sessions``.
"""

from __future__ import annotations

import collections
import contextlib
from collections.abc import Awaitable, Callable

import anyio
import anyio.abc
from anyio.streams.memory import MemoryObjectSendStream

from agent.config.model import Config, Probe, ProbeKind
from agent.core.answers import NameAttempt
from agent.core.inputs import (
    AddressProbed,
    Contacted,
    ContactRefused,
    Input,
    LookedUp,
    ProbeResult,
    Resolution,
    Swept,
)
from agent.core.timing import DEFAULT_TIMING, Timing
from agent.errors import WireError
from agent.io.channel import Channel, HandshakeFailed, server_handshake
from agent.io.handshaking import Handshaking, Ticket
from agent.io.heard import Heard
from agent.io.probes import probe
from agent.io.sessions import Sessions
from agent.io.tcp import TCPStream
from agent.protocol.wire import Identity, Role

__all__ = ["Contacts"]


_HELLO = Probe(ProbeKind.TCP)  # the agent's hello, on its port


def _plain(address: str) -> str:
    """A dual-stack listener sees IPv4 peers as ``::ffff:a.b.c.d`` (as the kernel's address is
    written by ``getpeername``); DNS lists ``a.b.c.d``. A string test, not ``ipaddress``: it
    runs for every contact."""
    return address[7:] if address.startswith("::ffff:") and "." in address else address


class Contacts:
    """Reaching peers and answering contacts, with the runner's parts each injected. (A plain
    class: a dataclass cost every start 1.9 million instructions to define.)"""

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
        handshaking: Handshaking | None = None,
        heard: Heard | None = None,
    ) -> None:
        self.config, self.me, self.resolve, self.post = config, me, resolve, post
        self.sessions = sessions
        #: whether the barrier has been released here (told to every contact in our hello)
        self.released = released
        #: what this agent did, for the release line: DNS lookups, probes, sessions, messages
        self.counts = counts
        self.timing = timing
        #: contacts still in their handshake, bounded (a port of its own; the shared port's
        #: connections come with a ticket of the mux's bound instead)
        self.handshaking = handshaking if handshaking is not None else Handshaking()
        #: with the exit barrier: the identities of hellos that passed their handshake
        self.heard = heard

    async def attempt(
        self, index: int, instance: str = "", addresses: tuple[str, ...] = (), hello: bool = False
    ) -> None:
        """Resolve peer ``index`` afresh (unless the core gives the ``addresses`` to try) and
        probe its addresses until one settles the attempt (``agent.core.answers.NameAttempt``
        says which); ``hello``: with the agent's hello on its port, whatever ``--probe`` is."""
        if addresses:
            resolution = Resolution(addresses)
        else:
            resolution = await self._resolve(self.config.topology.fqdn(index))
        attempt = NameAttempt(index, instance, resolution)
        for address in resolution.addresses:
            if attempt.probed(address, await self._probe(address, index, hello)):
                break
        await self.post.send(attempt.outcome())

    async def _resolve(self, name: str) -> Resolution:
        self.counts["dns_lookups"] += 1
        return await self.resolve(name)

    async def _probe(self, address: str, target: int | None, hello: bool = False) -> ProbeResult:
        self.counts["probes"] += 1
        heard = self.heard
        return await probe(
            _HELLO if hello else self.config.probe,
            address,
            me=self.me,
            target=target,
            token=self.config.token,
            released=self.released(),
            source=self.config.listen,
            timing=self.timing,
            heard=None if heard is None else lambda identity: heard.dialled(address, identity),
        )

    async def sweep(self) -> None:
        """One bulk round: every address the Service publishes, in one query."""
        service = self.config.topology.service_fqdn
        assert service is not None  # bulk discovery (the only sweeper) needs the Service
        await self.post.send(Swept(await self._resolve(service)))

    async def lookup(self, index: int) -> None:
        """Peer ``index``'s name asked again, probing nothing: what the core re-checks a
        contact that claims to be that pod by."""
        await self.post.send(LookedUp(index, await self._resolve(self.config.topology.fqdn(index))))

    async def probe_address(self, address: str) -> None:
        """One address of a bulk round (run by the runner's ProbeQueue, which bounds them)."""
        result = await self._probe(address, None)
        # The queue is unbounded: no need to yield once more per probe to post its result.
        self.post.send_nowait(AddressProbed(address, result))

    async def serve(self, stream: anyio.abc.SocketStream, ticket: Ticket | None = None) -> None:
        """One incoming connection: a probe (answered, then closed) or a member's session.
        ``ticket``: its place in the shared port's handshake bound (``agent.io.mux``); else it
        takes one in this port's own."""
        self.counts["contacts_answered"] += 1
        if ticket is not None:
            await self._serve(stream, ticket)
            return
        # A flood shares the bound by source address (agent.core.fairshare).
        peer = stream.peer if isinstance(stream, TCPStream) else ""
        with self.handshaking.admit(_plain(peer)) as ticket:
            await self._serve(stream, ticket)
        if ticket.dropped:
            self.counts["contacts_dropped"] += 1
            await stream.aclose()

    async def _serve(self, stream: anyio.abc.SocketStream, ticket: Ticket) -> None:
        channel = Channel(stream)
        key = next(self.sessions.conns)
        async with stream:
            address = _plain(channel.peer_address)
            try:
                hello = await server_handshake(
                    channel,
                    me=self.me,
                    token=self.config.token,
                    released=self.released(),
                    timeout=self.timing.handshake_timeout,
                )
            except HandshakeFailed as exc:
                with contextlib.suppress(anyio.ClosedResourceError):  # the instance has ended
                    await self.post.send(ContactRefused(exc.reason))
                return
            except WireError:
                return  # garbage, a port scanner, a closed connection: costs only itself
            ticket.proven()  # a peer now: never dropped for a newcomer
            if self.heard is not None:
                self.heard.came(address, hello.identity)
            # The queue is unbounded: posting needs no turn of the loop of its own (one
            # answered probe is a dozen turns; N agents answer N-1 probes each). Closed: this
            # barrier instance has ended, and nothing is left to tell.
            with contextlib.suppress(anyio.ClosedResourceError):
                self.post.send_nowait(Contacted(hello, address))
            if hello.role is Role.MEMBER:
                # Numbered when accepted, not now: a member's connection that timed out at its
                # end may finish its handshake here after the one the member retried with, and
                # must not pass for the newer session (Coordinator.joined keeps the newer).
                await self.sessions.carry(channel, hello, key, dialled=False, address=address)
