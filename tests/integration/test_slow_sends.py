"""A loaded machine: barrier messages that take long to send are never cut off half-way."""

from __future__ import annotations

import anyio
import pytest

from agent.config.parse import build_config
from agent.core.outcome import Outcome
from agent.core.timing import Timing
from agent.io import sessions
from agent.io.channel import Channel
from agent.io.runner import Deps, serve_and_wait
from agent.topology.podfiles import PodFacts
from tests.integration.conftest import Agents

pytestmark = pytest.mark.timeout(60)


@pytest.mark.asyncio
async def test_wake_ups_do_not_cancel_a_release_being_sent(
    agents: Agents, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No socket takes a message at once, each send takes 0.3 s, and the loop wakes every
    0.05 s (progress lines): the Release to every member and every member's Arrive must still go
    out (they once were cancelled)."""
    original = sessions.Sessions._write

    async def slow_write(channel: Channel, data: bytes, timeout: float) -> None:
        await anyio.sleep(0.3)
        await original(channel, data, timeout)

    monkeypatch.setattr(Channel, "write_nowait", lambda self, data: data)
    monkeypatch.setattr(sessions.Sessions, "_write", staticmethod(slow_write))
    peers = 4
    for i in range(peers):
        agents.publish(i)
    configs = [
        build_config(
            "wait",
            {
                "peers": str(peers),
                "index": str(i),
                "service": "headless-svc",
                "namespace": "default",
                "listen": agents.address(i),
                "dns_server": f"{agents.dns.address}:{agents.dns.port}",
                "timeout": "20s",
            },
            PodFacts(hostname=f"example-job-{i}"),
        )
        for i in range(peers)
    ]
    outcomes: list[Outcome] = []
    deps = Deps(timing=Timing(progress_every=0.05))

    async def one(i: int) -> None:
        outcomes.append(await serve_and_wait(configs[i], report=lambda e: None, deps=deps))

    async with anyio.create_task_group() as tg:
        for i in range(peers):
            tg.start_soon(one, i)
    assert len(outcomes) == peers
