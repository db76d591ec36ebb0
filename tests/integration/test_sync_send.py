"""The selectors driver's session writes (``agent.io.sync.peers.Peers.send``): a message for a
session whose socket still holds an earlier one goes behind it, in order.

Review 11 (read in the code): ``send`` wrote a later batch at once where the socket had room,
ahead of what a writer task still held of an earlier one, and a second writer task for the
same socket took the first one's place in the loop (which wakes one writer a socket): the
member read a line cut by another message, and the first writer was never woken.
"""

from __future__ import annotations

import socket
import time

import pytest

from agent.config.parse import build_config
from agent.core.inputs import Input, Resolution
from agent.core.timing import DEFAULT_TIMING
from agent.io.handshaking import Handshaking
from agent.io.sync.conn import Conn
from agent.io.sync.loop import Loop
from agent.io.sync.peers import Peers
from agent.protocol.wire import Abort, Ack, Identity, Release, decode
from agent.topology.podfiles import PodFacts

pytestmark = pytest.mark.timeout(20)


async def _no_dns(name: str) -> Resolution:
    raise AssertionError(f"no lookup expected: {name}")


def _peers(loop: Loop) -> Peers:
    values = {"peers": "2", "index": "0", "service": "svc", "namespace": "ns"}
    config = build_config("wait", values, PodFacts(hostname="job-0"))
    me = Identity("job", "", 0, 2, 29300, "")
    inputs: list[Input] = []
    handshaking = Handshaking(port=29300, report=lambda _: None)
    return Peers(
        loop, config, me, _no_dns, inputs.append, lambda: False, DEFAULT_TIMING, handshaking
    )


def test_batches_for_one_session_arrive_whole_and_in_order() -> None:
    loop = Loop(time.monotonic)
    ours, theirs = socket.socketpair()
    for sock in (ours, theirs):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    ours.setblocking(False)
    peers = _peers(loop)
    peers.channels[1] = Conn(loop, ours)
    many = 5_000  # far more than the socket takes at once
    peers.send([(1, Ack())] * many)  # a backlog stays
    peers.send([(1, Release("v"))])
    peers.send([(1, Abort("last"))])
    received = bytearray()
    theirs.settimeout(5)
    while received.count(b"\n") < many + 2:
        loop.poll(loop.clock() + 0.05)
        loop.run_ready()
        try:
            received += theirs.recv(65536)
        except TimeoutError:
            break
    messages = [decode(bytes(line)) for line in received.split(b"\n")[:-1]]
    assert messages == [Ack()] * many + [Release("v"), Abort("last")]
    loop.close()
    ours.close()
    theirs.close()
