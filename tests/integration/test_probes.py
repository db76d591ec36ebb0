"""Outgoing connections on plain sockets (agent.tcp) against real loopback listeners, under
asyncio and trio: the probe's answers and error texts, and a session's close."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio
import anyio.abc
import pytest

from agent.channel import Channel, server_handshake
from agent.config import Probe
from agent.errors import WireError
from agent.probes import ProbeResult, connect, probe
from agent.wire import Identity

pytestmark = pytest.mark.timeout(20)
backends = pytest.mark.parametrize("backend", ["asyncio", "trio"])

SERVER, CLIENT, NOBODY = "127.31.0.1", "127.31.0.2", "127.31.0.3"

Handler = Callable[[anyio.abc.SocketStream], Awaitable[None]]


async def _serving(handler: Handler, then: Callable[[int], Awaitable[None]]) -> None:
    """Run ``then(port)`` while a listener on SERVER hands each connection to ``handler``."""
    async with await anyio.create_tcp_listener(local_host=SERVER) as listener:
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        async with anyio.create_task_group() as tg:
            tg.start_soon(listener.serve, handler)
            await then(port)
            tg.cancel_scope.cancel()


def _me(port: int, index: int = 0) -> Identity:
    return Identity("job", "uid", index, 2, port, f"instance-{index}")


@backends
def test_a_probe_says_hello_from_the_listen_address_and_learns_who_answers(backend: str) -> None:
    seen: list[str] = []

    async def answer(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            channel = Channel(stream)
            seen.append(channel.peer_address)
            port = stream.extra(anyio.abc.SocketAttribute.local_port)
            await server_handshake(channel, me=_me(port, 1), token=None, released=True)

    async def check(port: int) -> None:
        result = await probe(
            Probe("tcp"), SERVER, me=_me(port), target=1, token=None, source=CLIENT
        )
        assert result == ProbeResult(released=True, index=1, instance="instance-1")

    anyio.run(_serving, answer, check, backend=backend)
    assert seen == [CLIENT]


@backends
def test_connection_failures_read_as_users_debug_them(backend: str) -> None:
    async def check(port: int) -> None:
        only_connect = Probe("tcp", port)
        refused = await probe(only_connect, NOBODY, me=_me(port), target=None, token=None)
        assert refused.reason == f"connect to port {port}: refused"
        # not an address of this host, as a mistyped --listen would be
        unbound = await probe(
            only_connect, SERVER, me=_me(port), target=None, token=None, source="192.0.2.1"
        )
        assert unbound.reason == (
            f"connect to port {port}: cannot bind to 192.0.2.1: Cannot assign requested address"
        )

    anyio.run(_serving, _close_at_once, check, backend=backend)


async def _close_at_once(stream: anyio.abc.SocketStream) -> None:
    await stream.aclose()


@backends
def test_a_hello_unanswered_before_the_peer_closes_fails_the_probe(backend: str) -> None:
    async def check(port: int) -> None:
        result = await probe(Probe("tcp"), SERVER, me=_me(port), target=None, token=None)
        assert result.reason == "hello failed: connection closed"

    anyio.run(_serving, _close_at_once, check, backend=backend)


@backends
def test_closing_a_session_wakes_its_reader(backend: str) -> None:
    """Contacts.close closes a session's channel while its reader waits for the next message."""

    async def hold(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            await anyio.sleep_forever()

    async def check(port: int) -> None:
        channel = await connect(SERVER, port, source=CLIENT)
        failures: list[str] = []

        async def read() -> None:
            try:
                await channel.receive(None)
            except WireError as exc:
                failures.append(str(exc))

        async with anyio.create_task_group() as tg:
            tg.start_soon(read)
            await anyio.wait_all_tasks_blocked()
            await channel.aclose()
        assert failures == ["connection closed"]

    anyio.run(_serving, hold, check, backend=backend)
