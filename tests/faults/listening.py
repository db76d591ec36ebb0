"""What the listener-hardening and flood tests share: connecting to a pod, saying hello,
watching a connection end."""

from __future__ import annotations

import socket
import struct
import time

import anyio
import anyio.abc
import pytest

from agent.config.model import Probe, ProbeKind
from agent.core.inputs import Reached
from agent.io.probes import probe
from agent.io.runner import identity_of
from agent.protocol.wire import Hello, Identity, Role, encode
from tests.faults.conftest import (
    Job,
    Pod,
)

pytestmark = pytest.mark.usefixtures("fast_progress")


async def connect_to(job: Job, i: int) -> anyio.abc.SocketStream:
    return await anyio.connect_tcp(job.address(i), job.port)


async def until_closed(stream: anyio.abc.SocketStream) -> tuple[float, bytes]:
    """Read until the agent closes; (seconds it took, what it sent)."""
    started, got = time.monotonic(), b""
    try:
        while True:
            got += await stream.receive()
    except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
        pass
    return time.monotonic() - started, got


async def reset(stream: anyio.abc.SocketStream) -> None:
    """Close with a TCP reset (SO_LINGER 0), as a crashed or killed client does."""
    sock = stream.extra(anyio.abc.SocketAttribute.raw_socket)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    await stream.aclose()


def hello(
    identity: Identity, role: Role = Role.PROBE, nonce: str = "ab" * 16, *, proves: bool = False
) -> bytes:
    return encode(Hello(identity, role, nonce, proves=proves))


async def listening(pod: Pod) -> None:
    """The pod's listener is up: it has written a progress line or reached someone."""
    await pod.until(lambda e: e.kind in ("progress", "reached"))


async def answers_a_peer(job: Job, i: int) -> None:
    me = identity_of(job.config(1 - i))
    result = await probe(Probe(ProbeKind.TCP), job.address(i), me=me, target=i, token=None)
    assert isinstance(result, Reached), result


class Tally:
    """Counts up to ``n``; ``wait`` returns once it has."""

    def __init__(self, n: int) -> None:
        self.n, self.count, self._done = n, 0, anyio.Event()

    def mark(self) -> None:
        self.count += 1
        if self.count >= self.n:
            self._done.set()

    async def wait(self) -> None:
        await self._done.wait()


async def reset_after_member_hello(job: Job, target: int) -> None:
    s = await connect_to(job, target)
    await s.send(hello(identity_of(job.config(1 - target)), role=Role.MEMBER))
    await reset(s)
