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

from agent.config.model import Config, Probe, ProbeKind
from agent.core.answers import NameAttempt, blind, dial_failed, failed_handshake
from agent.core.causes import Cause, Failure
from agent.core.inputs import (
    AddressProbed,
    Contacted,
    ContactRefused,
    Input,
    LookedUp,
    Lost,
    Opened,
    ProbeResult,
    Reached,
    Received,
    Resolution,
    Swept,
    Unreached,
)
from agent.core.timing import Timing
from agent.errors import WireError
from agent.io.handshakes import HandshakeFailed, client_handshake, server_handshake
from agent.io.handshaking import Handshaking
from agent.io.sockets import connect_problem, connect_timed_out, keepalive
from agent.io.sync.conn import Conn, open_tcp
from agent.io.sync.loop import Loop
from agent.protocol.wire import Hello, Identity, Message, Role, encode

__all__ = ["Peers"]

_HELLO = Probe(ProbeKind.TCP)  # the agent's hello, on its port


def _plain(address: str) -> str:
    """A dual-stack listener's ``::ffff:a.b.c.d`` as DNS lists it (``agent.io.contacts``)."""
    return address[7:] if address.startswith("::ffff:") and "." in address else address


class Peers:
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
        self.released, self.timing, self.handshaking = released, timing, handshaking
        #: what this agent did, for the release line (the anyio driver's counts)
        self.counts: collections.Counter[str] = collections.Counter()
        self.channels: dict[int, Conn] = {}
        #: connections numbered in the order they were made, shared with incoming contacts
        self.conns = itertools.count()

    # --- reaching peers (agent.io.contacts) -------------------------------------------------------
    async def attempt(
        self, index: int, instance: str = "", addresses: tuple[str, ...] = (), hello: bool = False
    ) -> None:
        if addresses:
            resolution = Resolution(addresses)
        else:
            resolution = await self._resolve(self.config.topology.fqdn(index))
        attempt = NameAttempt(index, instance, resolution)
        for address in resolution.addresses:
            if attempt.probed(address, await self._probe(address, index, hello)):
                break
        self.post(attempt.outcome())

    async def _resolve(self, name: str) -> Resolution:
        self.counts["dns_lookups"] += 1
        return await self.resolve(name)

    async def sweep(self) -> None:
        service = self.config.topology.service_fqdn
        assert service is not None  # bulk discovery (the only sweeper) needs the Service
        self.post(Swept(await self._resolve(service)))

    async def lookup(self, index: int) -> None:
        self.post(LookedUp(index, await self._resolve(self.config.topology.fqdn(index))))

    async def probe_address(self, address: str) -> None:
        self.post(AddressProbed(address, await self._probe(address, None)))

    async def _probe(self, address: str, target: int | None, hello: bool = False) -> ProbeResult:
        """As ``agent.io.probes.probe``: the connect's deadline, then the reply's."""
        self.counts["probes"] += 1
        kind = _HELLO if hello else self.config.probe
        if kind.kind is ProbeKind.DNS:
            return blind(None)
        port = kind.port or self.me.port
        clock = self.loop.clock
        try:
            sock = await open_tcp(
                self.loop, address, port, self.config.listen, clock() + self.timing.connect_timeout
            )
        except TimeoutError:
            return Unreached(Failure(connect_timed_out(port), Cause.CONNECT_TIMEOUT))
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
            return Unreached(Failure(f"hello failed: {exc}", Cause.HELLO_FAILED))
        finally:
            conn.close()
        return Reached(reply.identity.index, reply.identity.instance, reply.released)

    # --- answering contacts -----------------------------------------------------------------------
    async def serve(self, conn: Conn) -> None:
        """One incoming connection: a probe (answered, then closed) or a member's session;
        counted among those in their handshake (a dropped one is closed under it)."""
        self.counts["contacts_answered"] += 1
        address = _plain(conn.peer)
        ticket = self.handshaking.enter(address, conn.close)
        key = next(self.conns)
        try:
            try:
                # every message the handshake sends, within its whole deadline (a contact
                # sends two)
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
                return
            except WireError:
                return  # garbage, a port scanner, a closed connection: costs only itself
            finally:
                self.handshaking.leave(ticket)
                if ticket.dropped:
                    self.counts["contacts_dropped"] += 1
                    conn.close()
            self.post(Contacted(hello, address))
            if hello.role is Role.MEMBER:
                await self.carry(conn, hello, key, dialled=False, address=address)
        finally:
            # every way out, a refused or garbled contact's too: its sender waits for the close
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
        except WireError as exc:
            reason = str(exc)
        finally:
            self.channels.pop(key, None)
            conn.close()
            self.post(Lost(key, reason))

    async def dial_coordinator(self, addresses: tuple[str, ...] = (), index: int = 0) -> None:
        if addresses:
            resolution = Resolution(addresses)
        else:
            resolution = await self._resolve(self.config.topology.fqdn(index))
        problems: list[str] = []
        handshakes: list[Failure] = []  # the core tells a disagreeing coordinator from these
        refused = True  # every address refused the connection
        port, clock = self.config.port, self.loop.clock
        for address in resolution.addresses:
            try:
                deadline = clock() + self.timing.connect_timeout
                sock = await open_tcp(self.loop, address, port, self.config.listen, deadline)
            except TimeoutError:
                problems.append(f"{address}: {connect_timed_out(port)}")
                refused = False
                continue
            except OSError as exc:
                text, cause = connect_problem(exc, port)
                problems.append(f"{address}: {text}")
                refused = refused and cause is Cause.CONNECT_REFUSED
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
                refused = False
                continue
            self.post(Contacted(hello, address, listed=True))
            await self.carry(conn, hello, next(self.conns), dialled=True, address=address)
            return
        refused_at = resolution.addresses if refused else ()
        self.post(dial_failed(resolution, problems, refused_at, handshakes))

    def send(self, batch: Iterable[tuple[int, Message]]) -> None:
        """As ``Sessions.send``: each message encoded once, written at once where the socket
        has room; the rest by a task each, within ``send_timeout``, else the session drops."""
        encoded: dict[Message, bytes] = {}
        waiting: dict[int, bytes] = {}
        for conn, message in batch:
            if (channel := self.channels.get(conn)) is None:
                continue
            if (data := encoded.get(message)) is None:
                data = encoded[message] = encode(message)
            self.counts["messages_sent"] += 1
            if conn in waiting:  # behind the rest of an earlier message, in order
                waiting[conn] += data
                continue
            try:
                data = channel.write_nowait(data)
            except OSError:
                data = b""  # broken: its reader reports the loss
                channel.close()
            if data:
                waiting[conn] = data
        deadline = self.loop.clock() + self.timing.send_timeout
        for conn, data in waiting.items():
            self.loop.spawn(_write(self.channels[conn], data, deadline), _ignore)

    def close(self, conn: int) -> None:
        if (channel := self.channels.get(conn)) is not None:
            channel.close()


async def _write(channel: Conn, data: bytes, deadline: float) -> None:
    try:
        await channel.write(data, deadline)
    except (OSError, TimeoutError):
        # never sent again: drop the session, so its reader reports the loss and the cores
        # recover as from any lost session
        channel.close()


def _ignore(_: Exception) -> None:
    """A write task raises nothing but a bug in the loop itself, which its reader then sees."""
