"""A raw client and a bare server for the handshake tests: bytes in, outcomes counted."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import anyio.abc
import pytest

from agent.errors import WireError
from agent.io.channel import Channel, HandshakeFailed, server_handshake
from agent.protocol.wire import Identity, Message
from tests.faults.conftest import (
    JOB,
)

pytestmark = [pytest.mark.usefixtures("fast_progress"), pytest.mark.timeout(30)]
TOKEN = b"correct horse battery staple"
SERVER = Identity(JOB, "uid-1", 0, 3, 29300)
CLIENT = Identity(JOB, "uid-1", 1, 3, 29300)


class Outcomes:
    """Each connection's result (the client's Hello or the exception), in order."""

    def __init__(self) -> None:
        self.items: list[object] = []
        self._added = anyio.Event()

    def add(self, item: object) -> None:
        self.items.append(item)
        self._added.set()
        self._added = anyio.Event()

    async def at_least(self, n: int) -> list[object]:
        """Once the server has handled ``n`` connections (each ends in a result)."""
        while len(self.items) < n:
            await self._added.wait()
        return self.items


@asynccontextmanager
async def bare_server(token: bytes | None, outcomes: Outcomes) -> AsyncIterator[tuple[str, int]]:
    """server_handshake on a loopback port; each connection's result goes to ``outcomes``."""
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)

    async def handle(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            try:
                outcomes.add(
                    await server_handshake(Channel(stream), me=SERVER, token=token, released=False)
                )
            except (HandshakeFailed, WireError) as exc:
                outcomes.add(exc)

    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handle)
        yield "127.0.0.1", listener.extra(anyio.abc.SocketAttribute.local_port)
        tg.cancel_scope.cancel()


class RawClient:
    """A hand-driven client: sends exactly the lines it is given, reads messages."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel

    @classmethod
    async def open(cls, where: tuple[str, int]) -> RawClient:
        return cls(Channel(await anyio.connect_tcp(*where)))

    async def send(self, line: bytes) -> None:
        await self.channel.stream.send(line)

    async def receive(self) -> Message | None:
        try:
            return await self.channel.receive(3)
        except WireError:
            return None  # closed

    async def aclose(self) -> None:
        await self.channel.aclose()
