"""A member's dial of a coordinator too busy to take its connection, on the selectors driver
(``agent.io.sync.peers.Peers.dial_coordinator``): a connect that timed out leaves the address as
good as DNS's next answer (``agent.core.answers.at_the_address``), so the next dial reuses it
without a query, as the anyio driver's dial does.

Folding the drivers' duplicates (branch folddrivers) found the selectors dial counting a timed
out connect as no evidence of the address: every retry of a busy coordinator asked DNS for
pod 0's name again, one query a name every few seconds for as long as it stayed busy (the fix
``tests/pure/test_busy_peers_names.py`` holds the core to, lost in the default driver).
"""

from __future__ import annotations

import dataclasses
import os
import socket
import time

import pytest

from agent.config.parse import build_config
from agent.core.inputs import DialFailed, Input, Resolution
from agent.core.timing import DEFAULT_TIMING
from agent.io.handshaking import Handshaking
from agent.io.sync.loop import Loop
from agent.io.sync.peers import Peers
from agent.protocol.wire import Identity
from agent.topology.podfiles import PodFacts

pytestmark = pytest.mark.timeout(20)

_BUSY = f"127.{100 + os.getpid() % 100}.9.1"


def test_a_coordinator_too_busy_to_connect_is_dialled_again_without_dns() -> None:
    busy = socket.create_server((_BUSY, 0), backlog=0)
    port = busy.getsockname()[1]
    queue = [socket.create_connection((_BUSY, port))]  # never accepted: the queue is full
    values = {"peers": "2", "index": "1", "service": "svc", "namespace": "ns", "port": str(port)}
    config = build_config("wait", values, PodFacts(hostname="job-1"))
    timing = dataclasses.replace(DEFAULT_TIMING, connect_timeout=0.3)
    inputs: list[Input] = []
    errors: list[Exception] = []

    async def resolve(name: str) -> Resolution:
        return Resolution((_BUSY,))

    loop = Loop(time.monotonic)
    me = Identity("job", "", 1, 2, port, "")
    handshaking = Handshaking(port=port, report=lambda _: None)
    peers = Peers(loop, config, me, resolve, inputs.append, lambda: False, timing, handshaking)
    try:
        loop.spawn(peers.dial_coordinator(), on_error=errors.append)
        deadline = time.monotonic() + 10
        while not inputs and not errors and time.monotonic() < deadline:
            loop.poll(loop.clock() + 0.05)
            loop.run_ready()
    finally:
        loop.close()
        busy.close()
        for sock in queue:
            sock.close()
    assert errors == []
    [failed] = [event for event in inputs if isinstance(event, DialFailed)]
    assert "timed out" in failed.reason, failed
    assert failed.refused_at == (_BUSY,), failed
