"""The coverage-guided fuzz target: one input, bytes from a remote, through the agent's real code.

The first byte picks the path (and whether a token is set); the rest is what the remote sends,
written into a real loopback TCP connection and half-closed:

- 0 ``wire.decode`` alone;
- 1 an incoming contact: ``Contacts.serve`` (channel → decode → handshake → session) as the
  coordinator, every message it posts fed to the ``Coordinator`` core;
- 2 a reply: ``client_handshake`` as a member, then ``Contacts.session``, every message fed to
  the ``Member`` core;
- 3 the health server's request handler.

Anything but the errors each path ends in on purpose is a crash. ``make fuzz`` runs this under
atheris (``python -m tests.fuzz``); ``tests/faults/test_fuzz_corpus.py`` replays the corpus and
every crash kept in ``tests/fuzz/crashes``.
"""

from __future__ import annotations

import collections
import contextlib
import socket
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    # load() binds these at run time, so that atheris instruments them as they are imported:
    # here they only tell the type checker what those globals are.
    import anyio
    from anyio.streams.memory import MemoryObjectSendStream

    import agent.commands.health
    import agent.config
    import agent.core.inputs
    import agent.core.roles
    import agent.errors
    import agent.io.channel
    import agent.io.contacts
    import agent.io.handshaking
    import agent.io.sessions
    import agent.io.tcp
    import agent.protocol.wire

__all__ = ["PATHS", "load", "one_input"]

PATHS = ("decode", "contact", "reply", "health")
TOKEN = b"fuzz token"
_listener: socket.socket | None = None


def load() -> None:
    """Import what the target drives (under ``atheris.instrument_imports`` when fuzzing)."""
    global anyio, agent
    import anyio

    import agent.commands.health
    import agent.config
    import agent.core.inputs
    import agent.core.roles
    import agent.errors
    import agent.io.channel
    import agent.io.contacts
    import agent.io.handshaking
    import agent.io.sessions
    import agent.io.tcp
    import agent.protocol.wire


def _pair() -> tuple[socket.socket, socket.socket]:
    """A connected loopback TCP pair: (the agent's end, the remote's end)."""
    global _listener
    if _listener is None:
        _listener = socket.create_server(("127.0.0.1", 0))
    remote = socket.create_connection(_listener.getsockname())
    ours, _ = _listener.accept()
    ours.setblocking(False)
    return ours, remote


def _identity(index: int) -> agent.protocol.wire.Identity:
    return agent.protocol.wire.Identity(
        "example-job", "", index, 2, 29300, "ffffffffffffffff-ffffffff"
    )


def _contacts(
    me: agent.protocol.wire.Identity,
    post: MemoryObjectSendStream[agent.core.inputs.Input],
    token: bytes | None,
) -> agent.io.contacts.Contacts:
    values = {"peers": "2", "index": str(me.index), "service": "s", "namespace": "n"}
    if token is not None:
        values["token"] = token.decode()
    config = agent.config.parse.build_config(
        "wait", values, agent.topology.podfiles.PodFacts(hostname=f"example-job-{me.index}")
    )

    async def resolve(name: str) -> agent.core.inputs.Resolution:
        raise AssertionError("nothing is resolved here")

    counts: collections.Counter[str] = collections.Counter()
    sessions = agent.io.sessions.Sessions(config, me, resolve, post, lambda: False, counts)
    return agent.io.contacts.Contacts(config, me, resolve, post, sessions, lambda: False, counts)


async def _drained(
    run: Callable[[MemoryObjectSendStream[agent.core.inputs.Input]], Coroutine[Any, Any, None]],
) -> list[agent.core.inputs.Input]:
    send, receive = anyio.create_memory_object_stream[agent.core.inputs.Input](1000)
    async with send, receive:
        await run(send)
        items = []
        while True:
            try:
                items.append(receive.receive_nowait())
            except anyio.WouldBlock:
                return items


async def _contact(sock: socket.socket, token: bytes | None) -> None:
    me = _identity(0)
    stream = agent.io.tcp.TCPStream(sock)

    async def run(post: MemoryObjectSendStream[agent.core.inputs.Input]) -> None:
        await _contacts(me, post, token).serve(stream)

    core = agent.core.roles.Coordinator(me)
    for item in await _drained(run):
        if isinstance(item, agent.core.inputs.Opened):
            core.joined(item.conn, item.hello, 1.0)
        elif isinstance(item, agent.core.inputs.Received):
            core.received(item.conn, item.message, 1.0)
        elif isinstance(item, agent.core.inputs.Lost):
            core.closed(item.conn, 1.0)


async def _reply(sock: socket.socket, token: bytes | None) -> None:
    me = _identity(1)
    channel = agent.io.channel.Channel(agent.io.tcp.TCPStream(sock))
    try:
        hello = await agent.io.channel.client_handshake(
            channel, me=me, role=agent.protocol.wire.Role.MEMBER, token=token, expected_index=0
        )
    except (agent.io.channel.HandshakeFailed, agent.errors.WireError):
        await channel.aclose()
        return

    async def run(post: MemoryObjectSendStream[agent.core.inputs.Input]) -> None:
        await _contacts(me, post, token).sessions.carry(channel, hello, 7, dialled=True)

    core = agent.core.roles.Member(now=0.0, rand=lambda: 0.5)
    core.reached_all("view", 0.0)
    core.opened(7, 0.0)
    for item in await _drained(run):
        if isinstance(item, agent.core.inputs.Received):
            core.received(item.message, 1.0)


async def _health(sock: socket.socket, token: bytes | None) -> None:
    bounds = agent.commands.health.HealthBounds()
    stream = agent.io.tcp.TCPStream(sock)
    await agent.commands.health._serve(stream, lambda: token is None, None, bounds)


_RUNS = {"contact": _contact, "reply": _reply, "health": _health}


async def _bounded(path: str, sock: socket.socket, token: bytes | None) -> None:
    with anyio.fail_after(10):  # a hang is a bug too
        await _RUNS[path](sock, token)


def one_input(data: bytes) -> None:
    """Raises only on a bug: what the remote sends must end in the path's own errors."""
    if not data:
        return
    path, token = PATHS[data[0] % 4], TOKEN if data[0] & 4 else None
    payload = data[1:]
    if path == "decode":
        with contextlib.suppress(agent.errors.WireError):
            agent.protocol.wire.decode(payload)
        return
    ours, remote = _pair()
    with ours, remote:
        remote.sendall(payload)
        remote.shutdown(socket.SHUT_WR)
        anyio.run(_bounded, path, ours, token)
