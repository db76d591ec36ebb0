"""Reaching peers, answering them, and carrying barrier sessions, on the selectors loop.

What ``agent.io.contacts`` and ``agent.io.sessions`` do for the anyio driver, for the ``tcp``
probe (and ``tcp:PORT``, ``dns``): each task posts what happened (the core's inputs, the same
ones) into the driver's queue and decides nothing. The handshakes are the shared coroutines of
``agent.io.handshakes``; a failure reads as it does in the other driver.
"""

from __future__ import annotations

import collections
import itertools
from collections.abc import Awaitable, Callable, Iterable

from agent.config.model import Config, ProbeKind
from agent.core.answers import (
    blind,
    dial_failed,
    failed_handshake,
    hello_failed,
    replied,
)
from agent.core.causes import Cause, Failure
from agent.core.inputs import (
    Contacted,
    ContactRefused,
    Input,
    Lost,
    Opened,
    ProbeResult,
    Received,
    Resolution,
    Unreached,
)
from agent.core.timing import Timing
from agent.errors import WireError
from agent.io.batches import outgoing
from agent.io.handshakes import HandshakeFailed, client_handshake, server_handshake
from agent.io.handshaking import Handshaking
from agent.io.reaching import HELLO, Reaching, asked, plain
from agent.io.sockets import connect_problem, connect_timed_out, connect_timeout, keepalive
from agent.io.sync.conn import Conn, open_tcp
from agent.io.sync.loop import Loop, checkpoint, writable
from agent.protocol.wire import Hello, Identity, Message, Role

__all__ = ["Peers"]


class Peers(Reaching):
    """Reaching peers (``agent.io.reaching``), answering contacts and carrying sessions."""

    def __init__(
        self,
        loop: Loop,
        config: Config,
        me: Identity,
        resolve: Callable[[str], Awaitable[Resolution]],
        post: Callable[[Input], None],
        released: Callable[[], bool],
        timing: Timing,
        handshaking: Handshaking,
    ) -> None:
        self.loop, self.config, self.me, self.resolve, self.post = loop, config, me, resolve, post
        self._tell_now = post
        self.released, self.timing, self.handshaking = released, timing, handshaking
        #: what this agent did, for the release line (the anyio driver's counts)
        self.counts: collections.Counter[str] = collections.Counter()
        self.channels: dict[int, Conn] = {}
        #: connections numbered in the order they were made, shared with incoming contacts
        self.conns = itertools.count()
        #: per session, what its socket has not taken yet: one writer task drains it, and a
        #: later message goes behind it (anyio's driver awaits each send, so it needs none)
        self._backlog: dict[int, bytearray] = {}

    # --- reaching peers (agent.io.reaching) -------------------------------------------------------
    async def _tell(self, event: Input) -> None:
        self.post(event)  # the loop's queue takes it at once: no turn to yield

    async def _probe(self, address: str, target: int | None, hello: bool) -> ProbeResult:
        """As ``agent.io.probes.probe``: the connect's deadline, then the reply's."""
        kind = HELLO if hello else self.config.probe
        if kind.kind is ProbeKind.DNS:
            return blind(None)
        port = kind.port or self.me.port
        clock = self.loop.clock
        try:
            sock = await open_tcp(
                self.loop, address, port, self.config.listen, clock() + self.timing.connect_timeout
            )
        except TimeoutError:
            return Unreached(connect_timeout(port))
        except OSError as exc:
            return Unreached(Failure(*connect_problem(exc, port)))
        conn = Conn(self.loop, sock, address)
        try:
            if not kind.says_hello:
                return blind(None)
            conn.deadline = clock() + self.timing.handshake_timeout
            reply = await client_handshake(
                conn,
                me=self.me,
                role=Role.PROBE,
                token=self.config.token,
                expected_index=target,
                released=self.released(),
                timeout=None,
            )
        except HandshakeFailed as exc:
            return failed_handshake(exc.failure)
        except WireError as exc:
            return hello_failed(exc)
        finally:
            conn.close()
        return replied(reply)

    # --- answering contacts -----------------------------------------------------------------------
    async def serve(self, conn: Conn) -> None:
        """One incoming connection: a probe (answered, then closed) or a member's session;
        counted among those in their handshake (a dropped one is closed under it)."""
        self.counts["contacts_answered"] += 1
        address = plain(conn.peer)
        ticket = self.handshaking.enter(address, conn.close)
        key = next(self.conns)
        try:
            # every message the handshake sends, within its whole deadline (a contact sends two)
            conn.deadline = self.loop.clock() + 2 * self.timing.handshake_timeout
            hello = await server_handshake(
                conn,
                me=self.me,
                token=self.config.token,
                released=self.released(),
                timeout=self.timing.handshake_timeout,
            )
        except HandshakeFailed as exc:
            self.post(ContactRefused(exc.reason))
            conn.close()
            return
        except WireError:
            conn.close()  # at once, as the anyio driver: not when the next contact comes
            return  # garbage, a port scanner, a closed connection: costs only itself
        finally:
            self.handshaking.leave(ticket)
            if ticket.dropped:
                self.counts["contacts_dropped"] += 1
                conn.close()
        try:
            self.post(Contacted(hello, address))
            if hello.role is Role.MEMBER:
                await self.carry(conn, hello, key, dialled=False, address=address)
        finally:
            conn.close()

    # --- barrier sessions (agent.io.sessions) -----------------------------------------------------
    async def carry(
        self, conn: Conn, hello: Hello, key: int, *, dialled: bool, address: str = ""
    ) -> None:
        self.channels[key] = conn
        self.counts["sessions"] += 1
        keepalive(conn.sock, self.timing)
        conn.deadline = None  # a session waits as long as it lives: the keepalive bounds it
        reason = "closed"
        self.post(Opened(key, hello, dialled, address))
        try:
            while True:
                message = await conn.receive(None)
                self.counts["messages_received"] += 1
                self.post(Received(key, message))
                await checkpoint()  # a peer that keeps the socket full must not hold the loop
        except WireError as exc:
            reason = str(exc)
        finally:
            self.channels.pop(key, None)
            conn.close()
            self.post(Lost(key, reason))

    async def dial_coordinator(self, addresses: tuple[str, ...] = (), index: int = 0) -> None:
        resolution = await asked(self.config, self.resolve, self.counts, index, addresses)
        problems: list[str] = []
        handshakes: list[Failure] = []  # the core tells a disagreeing coordinator from these
        causes: list[Cause | None] = []  # why each address failed (``dial_failed``)
        port, clock = self.config.port, self.loop.clock
        for address in resolution.addresses:
            try:
                deadline = clock() + self.timing.connect_timeout
                sock = await open_tcp(self.loop, address, port, self.config.listen, deadline)
            except TimeoutError:
                problems.append(f"{address}: {connect_timed_out(port)}")
                causes.append(Cause.CONNECT_TIMEOUT)
                continue
            except OSError as exc:
                text, cause = connect_problem(exc, port)
                problems.append(f"{address}: {text}")
                causes.append(cause)
                continue
            conn = Conn(self.loop, sock, address)
            conn.deadline = clock() + 2 * self.timing.handshake_timeout
            try:
                hello = await client_handshake(
                    conn,
                    me=self.me,
                    role=Role.MEMBER,
                    token=self.config.token,
                    expected_index=index,
                    released=self.released(),
                    timeout=self.timing.handshake_timeout,
                )
            except (HandshakeFailed, WireError) as exc:
                conn.close()
                problems.append(f"{address}: {exc}")
                if isinstance(exc, HandshakeFailed):
                    handshakes.append(exc.failure)
                causes.append(exc.failure.cause if isinstance(exc, HandshakeFailed) else None)
                continue
            self.post(Contacted(hello, address, listed=True))
            await self.carry(conn, hello, next(self.conns), dialled=True, address=address)
            return
        self.post(dial_failed(resolution, problems, causes, handshakes))

    def send(self, batch: Iterable[tuple[int, Message]]) -> None:
        """As ``Sessions.send``: each message encoded once, written at once where the socket
        has room; the rest by one task a session, within ``send_timeout``, else the session
        drops. A message for a session whose socket still holds an earlier one goes behind it:
        written at once, it would land inside the earlier message's line."""
        deadline = self.loop.clock() + self.timing.send_timeout
        for conn, channel, data in outgoing(batch, self.channels, self.counts):
            if (backlog := self._backlog.get(conn)) is not None:
                backlog += data
                continue
            try:
                data = channel.write_nowait(data)
            except OSError:
                data = b""  # broken: its reader reports the loss
                channel.close()
            if data:
                self._backlog[conn] = bytearray(data)
                self.loop.spawn(self._drain(conn, channel, deadline), _ignore)

    async def _drain(self, conn: int, channel: Conn, deadline: float) -> None:
        """Session ``conn``'s backlog, written as its socket takes it."""
        backlog = self._backlog[conn]
        try:
            while backlog:
                try:
                    del backlog[: channel.sock.send(backlog)]
                except BlockingIOError:
                    await writable(channel.sock, deadline)
        except (OSError, TimeoutError):
            # never sent again: drop the session, so its reader reports the loss and the cores
            # recover as from any lost session
            channel.close()
        finally:
            del self._backlog[conn]

    def close(self, conn: int) -> None:
        if (channel := self.channels.get(conn)) is not None:
            channel.close()


def _ignore(_: Exception) -> None:
    """A write task raises nothing but a bug in the loop itself, which its reader then sees."""
