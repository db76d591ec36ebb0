"""Barrier sessions: the long-lived connections between members and the coordinator.

They carry messages both ways and post what happens (opened, received, lost) into the runner's
queue; what a message means is the core's business.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
from collections.abc import Awaitable, Callable, Iterable

import anyio
from anyio.streams.memory import MemoryObjectSendStream

from agent.config.model import Config
from agent.core.answers import dial_failed
from agent.core.causes import Cause, Failure
from agent.core.inputs import Contacted, Input, Lost, Opened, Received, Resolution
from agent.core.timing import DEFAULT_TIMING, Timing
from agent.errors import WireError
from agent.io.batches import outgoing
from agent.io.channel import Channel, HandshakeFailed, client_handshake
from agent.io.probes import ConnectFailed, connect
from agent.io.reaching import asked
from agent.protocol.wire import Hello, Identity, Message, Role

__all__ = ["Sessions"]


class Sessions:
    def __init__(
        self,
        config: Config,
        me: Identity,
        resolve: Callable[[str], Awaitable[Resolution]],
        post: MemoryObjectSendStream[Input],
        released: Callable[[], bool],
        counts: collections.Counter[str],
        timing: Timing = DEFAULT_TIMING,
    ) -> None:
        """``released``: whether the barrier has been released here (told to the coordinator
        in our hello)."""
        self.config, self.me, self.resolve, self.post = config, me, resolve, post
        self.released, self.counts, self.timing = released, counts, timing
        self.channels: dict[int, Channel] = {}
        #: connections numbered in the order they were made, shared with incoming contacts
        self.conns = itertools.count()

    async def carry(
        self, channel: Channel, hello: Hello, conn: int, *, dialled: bool, address: str = ""
    ) -> None:
        """Carry a barrier session with the pod at ``address`` into the loop until it closes."""
        self.channels[conn] = channel
        self.counts["sessions"] += 1
        channel.keepalive(self.timing)
        reason = "closed"
        try:
            await self.post.send(Opened(conn, hello, dialled, address))
            while True:
                message = await channel.receive(None)
                self.counts["messages_received"] += 1
                await self.post.send(Received(conn, message))
        except WireError as exc:
            reason = str(exc)
        except anyio.ClosedResourceError:  # this barrier instance has ended: nobody to tell
            pass
        finally:
            self.channels.pop(conn, None)
            with anyio.CancelScope(shield=True):
                await channel.aclose()
                with contextlib.suppress(anyio.ClosedResourceError):
                    await self.post.send(Lost(conn, reason))

    async def dial_coordinator(self, addresses: tuple[str, ...] = (), index: int = 0) -> None:
        """Member: open the session to its coordinator, pod ``index``, re-resolving its name
        (unless the core gives the ``addresses`` to try); the first address whose handshake
        succeeds (the reply is that index of this job) carries it."""
        resolution = await asked(self.config, self.resolve, self.counts, index, addresses)
        problems: list[str] = []
        handshakes: list[Failure] = []  # the core tells a disagreeing coordinator from these
        causes: list[Cause | None] = []  # why each address failed (``dial_failed``)
        for address in resolution.addresses:
            try:
                channel = await connect(
                    address, self.config.port, source=self.config.listen, timing=self.timing
                )
                hello = await client_handshake(
                    channel,
                    me=self.me,
                    role=Role.MEMBER,
                    token=self.config.token,
                    expected_index=index,
                    released=self.released(),
                    timeout=self.timing.handshake_timeout,
                )
            except ConnectFailed as exc:
                problems.append(f"{address}: {exc}")
                causes.append(exc.cause)
                continue
            except (HandshakeFailed, WireError) as exc:
                await channel.aclose()
                problems.append(f"{address}: {exc}")
                if isinstance(exc, HandshakeFailed):
                    handshakes.append(exc.failure)
                causes.append(exc.failure.cause if isinstance(exc, HandshakeFailed) else None)
                continue
            # The reply is a hello like any other: a coordinator that restarted is seen here
            # first by a member whose probes of it are done.
            self.post.send_nowait(Contacted(hello, address, listed=True))
            await self.carry(channel, hello, next(self.conns), dialled=True, address=address)
            return
        await self.post.send(dial_failed(resolution, problems, causes, handshakes))

    async def send(self, batch: Iterable[tuple[int, Message]]) -> None:
        """Send each message to its session. A message is encoded once and written straight to
        every socket with room for it (a release to 10,000 members, each send awaited, took
        seconds); the rest wait together, and a session whose message is not out within
        ``timing.send_timeout`` is dropped: its reader reports the loss and the cores recover."""
        waiting: dict[int, bytes] = {}  # conn -> what its socket did not take yet
        for conn, channel, data in outgoing(batch, self.channels, self.counts):
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
                    tg.start_soon(self._write, self.channels[conn], data, self.timing.send_timeout)

    @staticmethod
    async def _write(channel: Channel, data: bytes, timeout: float) -> None:
        try:
            with anyio.fail_after(timeout):
                await channel.write(data)
        except (OSError, TimeoutError, anyio.BrokenResourceError, anyio.ClosedResourceError):
            # A message that did not go out is never sent again: drop the session, so its reader
            # reports the loss and the cores recover as from any lost session.
            await channel.aclose()

    async def close(self, conn: int) -> None:
        if (channel := self.channels.get(conn)) is not None:
            await channel.aclose()
