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

from agent.config.model import Config
from agent.core.inputs import Contacted, ContactRefused, Input, ProbeResult, Resolution
from agent.core.timing import DEFAULT_TIMING, Timing
from agent.errors import WireError
from agent.io.channel import Channel, HandshakeFailed, server_handshake
from agent.io.handshaking import Handshaking, Ticket
from agent.io.heard import Heard
from agent.io.probes import probe
from agent.io.reaching import HELLO, Reaching, plain
from agent.io.sessions import Sessions
from agent.io.tcp import TCPStream
from agent.protocol.wire import Identity, Role

__all__ = ["Contacts"]


class Contacts(Reaching):
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
        self._tell, self._tell_now = post.send, post.send_nowait
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

    async def _probe(self, address: str, target: int | None, hello: bool) -> ProbeResult:
        heard = self.heard
        return await probe(
            HELLO if hello else self.config.probe,
            address,
            me=self.me,
            target=target,
            token=self.config.token,
            released=self.released(),
            source=self.config.listen,
            timing=self.timing,
            heard=None if heard is None else lambda identity: heard.dialled(address, identity),
        )

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
        with self.handshaking.admit(plain(peer)) as ticket:
            await self._serve(stream, ticket)
        if ticket.dropped:
            self.counts["contacts_dropped"] += 1
            await stream.aclose()

    async def _serve(self, stream: anyio.abc.SocketStream, ticket: Ticket) -> None:
        channel = Channel(stream)
        key = next(self.sessions.conns)
        async with stream:
            address = plain(channel.peer_address)
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
