"""The agent's I/O tasks: reaching a peer, answering contacts, carrying barrier sessions.

They change no state of their own: each posts what happened into the runner's queue, where the
one loop feeds it to the pure cores.
"""

from __future__ import annotations

import collections
import contextlib
import ipaddress
import itertools
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

import anyio
import anyio.abc
from anyio.streams.memory import MemoryObjectSendStream

from agent.channel import (
    Channel,
    HandshakeFailed,
    client_handshake,
    send_message,
    server_handshake,
)
from agent.config import Config
from agent.errors import WireError
from agent.events import Event
from agent.handshake import Verdict, compare
from agent.limits import MAX_HANDSHAKING
from agent.probes import ConnectFailed, ProbeResult, connect, probe
from agent.resolver import Resolution
from agent.wire import Hello, Identity, Message, Refuse, encode

__all__ = [
    "AddressProbed",
    "Attempted",
    "Contacts",
    "Lost",
    "Note",
    "Nudge",
    "Opened",
    "Posted",
    "Received",
    "Swept",
]

SEND_TIMEOUT = 2.0
#: a member whose coordinator cannot be connected posts Lost for this pseudo-connection
NO_CONN = -1


def _plain(address: str) -> str:
    """A dual-stack listener sees IPv4 peers as ``::ffff:a.b.c.d``; DNS lists ``a.b.c.d``."""
    try:
        mapped = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(mapped, ipaddress.IPv6Address) and mapped.ipv4_mapped is not None:
        return str(mapped.ipv4_mapped)
    return address


@dataclass(frozen=True)
class Attempted:
    """One resolve-and-probe of peer ``index`` ended."""

    index: int
    result: ProbeResult
    address: str = ""
    addresses: tuple[str, ...] = ()


@dataclass(frozen=True)
class Nudge:
    """Peer ``index`` contacted us from ``address``: it is up, try it now. When it is a new
    instance of a peer reached before, ``handled`` is set once the loop has dealt with that."""

    index: int
    address: str
    instance: str = ""
    handled: anyio.Event | None = None


@dataclass(frozen=True)
class Swept:
    """The Service's own name resolved (bulk discovery): every published address, or why not."""

    resolution: Resolution


@dataclass(frozen=True)
class AddressProbed:
    """An address from the Service's records was probed; the hello says which peer it is."""

    address: str
    result: ProbeResult


@dataclass(frozen=True)
class Opened:
    conn: int
    hello: Hello


@dataclass(frozen=True)
class Received:
    conn: int
    message: Message


@dataclass(frozen=True)
class Lost:
    conn: int
    reason: str


@dataclass(frozen=True)
class Note:
    event: Event


Posted = Attempted | Nudge | Swept | AddressProbed | Opened | Received | Lost | Note


@dataclass
class Contacts:
    config: Config
    me: Identity
    resolve: Callable[[str], Awaitable[Resolution]]
    post: MemoryObjectSendStream[Posted]
    #: whether the barrier has been released here (told to every contact in our hello)
    released: Callable[[], bool]
    #: whether a hello (index, instance) comes from a new instance of a peer reached before
    restarted: Callable[[int, str], bool]
    coordinates: bool
    channels: dict[int, Channel] = field(default_factory=dict)
    _conns: itertools.count[int] = field(default_factory=itertools.count)
    #: contacts still in their handshake, oldest first, each cancellable
    _handshaking: collections.OrderedDict[int, anyio.CancelScope] = field(
        default_factory=collections.OrderedDict
    )
    #: what this agent did, for the release line: DNS lookups, probes, sessions, messages
    counts: collections.Counter[str] = field(default_factory=collections.Counter)

    async def attempt(self, index: int) -> None:
        """Resolve peer ``index`` afresh and probe each address until one is the right pod."""
        resolution = await self._resolve(self.config.topology.fqdn(index))
        if resolution.problem:
            await self.post.send(Attempted(index, ProbeResult(resolution.problem)))
            return
        reasons = []
        for address in resolution.addresses:
            result = await self._probe(address, index)
            if result.ok or result.disagrees:
                # Only the address that answered as the pod: another may be a stale record.
                await self.post.send(Attempted(index, result, address, (address,)))
                return
            several = len(resolution.addresses) > 1
            reasons.append(f"{address}: {result.reason}" if several else result.reason)
        await self.post.send(Attempted(index, ProbeResult("; ".join(reasons))))

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
        )

    async def _restart_seen(self, hello: Hello, address: str) -> None:
        """A new instance of a peer we had reached: have the loop withdraw our arrival before
        the new instance gets our reply (it could otherwise arrive and be released with us
        still counting the instance that is gone)."""
        theirs = hello.identity
        if compare(self.me, theirs, expected_index=None)[0] != Verdict.SAME:
            return
        if not 0 <= theirs.index < self.me.peers or not self.restarted(
            theirs.index, theirs.instance
        ):
            return
        handled = anyio.Event()
        await self.post.send(Nudge(theirs.index, address, theirs.instance, handled))
        with anyio.move_on_after(1.0):
            await handled.wait()

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
        key = next(self._conns)
        self.counts["contacts_answered"] += 1
        with anyio.CancelScope() as scope:
            self._handshaking[key] = scope
            try:
                await self._serve(stream, key)
            finally:
                self._handshaking.pop(key, None)
        if scope.cancelled_caught:
            await stream.aclose()

    async def _serve(self, stream: anyio.abc.SocketStream, key: int) -> None:
        channel = Channel(stream)
        async with stream:
            address = _plain(channel.peer_address)
            try:
                hello = await server_handshake(
                    channel,
                    me=self.me,
                    token=self.config.token,
                    released=self.released(),
                    on_peer=lambda hello: self._restart_seen(hello, address),
                )
            except HandshakeFailed as exc:
                await self.post.send(Note(Event("refused", f"refused a contact: {exc.reason}")))
                return
            except WireError:
                return  # garbage, a port scanner, a closed connection: costs only itself
            self._handshaking.pop(key, None)  # a peer now: never dropped for a newcomer
            theirs = hello.identity
            same = compare(self.me, theirs, expected_index=None)[0] == Verdict.SAME
            if same and theirs.index < self.me.peers and address:
                # The queue is unbounded: posting needs no turn of the loop of its own (one
                # answered probe is a dozen turns; N agents answer N-1 probes each).
                self.post.send_nowait(Nudge(theirs.index, address, theirs.instance))
            if hello.role != "member":
                return
            if not self.coordinates:
                with contextlib.suppress(WireError):  # told if still there
                    await send_message(
                        channel, Refuse(f"pod {self.me.index} is not the coordinator")
                    )
                return
            # Numbered when accepted, not now: a member's connection that timed out at its end
            # may finish its handshake here after the one the member retried with, and must not
            # pass for the newer session (Coordinator.joined keeps the newer).
            await self.session(channel, hello, key)

    async def session(self, channel: Channel, hello: Hello, conn: int) -> None:
        """Carry a barrier session's messages into the loop until it closes."""
        self.channels[conn] = channel
        self.counts["sessions"] += 1
        channel.keepalive()
        reason = "closed"
        try:
            await self.post.send(Opened(conn, hello))
            while True:
                message = await channel.receive(None)
                self.counts["messages_received"] += 1
                await self.post.send(Received(conn, message))
        except WireError as exc:
            reason = str(exc)
        finally:
            self.channels.pop(conn, None)
            with anyio.CancelScope(shield=True):
                await channel.aclose()
                await self.post.send(Lost(conn, reason))

    async def connect_coordinator(self) -> None:
        """Member: open the session to index 0, always re-resolving its name."""
        resolution = await self._resolve(self.config.topology.fqdn(0))
        problems = [resolution.problem] if resolution.problem else []
        for address in resolution.addresses:
            try:
                channel = await connect(address, self.config.port, source=self.config.listen)
                hello = await client_handshake(
                    channel,
                    me=self.me,
                    role="member",
                    token=self.config.token,
                    expected_index=0,
                    released=self.released(),
                )
            except ConnectFailed as exc:
                problems.append(f"{address}: {exc}")
                continue
            except (HandshakeFailed, WireError) as exc:
                await channel.aclose()
                problems.append(f"{address}: {exc}")
                continue
            await self.session(channel, hello, next(self._conns))
            return
        await self.post.send(Lost(NO_CONN, "; ".join(problems) or "no address"))

    async def send(self, batch: Iterable[tuple[int, Message]]) -> None:
        """Send each message to its session. A message is encoded once and written straight to
        every socket with room for it (a release to 10,000 members, each send awaited, took
        seconds); the rest wait together, and a session whose message is not out within
        SEND_TIMEOUT is dropped: its reader reports the loss and the cores recover."""
        encoded: dict[Message, bytes] = {}
        waiting: dict[int, bytes] = {}  # conn -> what its socket did not take yet
        for conn, message in batch:
            if (channel := self.channels.get(conn)) is None:
                continue
            if (data := encoded.get(message)) is None:
                data = encoded[message] = encode(message)
            self.counts["messages_sent"] += 1
            if conn in waiting:  # behind the rest of an earlier message, in order
                waiting[conn] += data
                continue
            with contextlib.suppress(OSError):  # broken: the awaited write drops the session
                data = channel.write_nowait(data)
            if data:
                waiting[conn] = data
        if waiting:
            async with anyio.create_task_group() as tg:
                for conn, data in waiting.items():
                    tg.start_soon(self._write, self.channels[conn], data)

    @staticmethod
    async def _write(channel: Channel, data: bytes) -> None:
        try:
            with anyio.fail_after(SEND_TIMEOUT):
                await channel.write(data)
        except (OSError, TimeoutError, anyio.BrokenResourceError, anyio.ClosedResourceError):
            # A message that did not go out is never sent again: drop the session, so its reader
            # reports the loss and the cores recover as from any lost session.
            await channel.aclose()

    async def close(self, conn: int) -> None:
        if (channel := self.channels.get(conn)) is not None:
            await channel.aclose()
