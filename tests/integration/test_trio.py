"""The runner is anyio code: it runs under trio too (dnspython's backend passed explicitly)."""

from __future__ import annotations

import anyio
import anyio.abc
import pytest

from agent.config.model import Config
from agent.config.parse import build_config
from agent.core.outcome import Outcome
from agent.errors import WireError
from agent.io.probes import connect
from agent.io.runner import serve_and_wait
from agent.topology.podfiles import PodFacts
from tests.integration.conftest import Agents, fqdn

pytestmark = pytest.mark.timeout(30)


def _two_published(agents: Agents) -> list[Config]:
    agents.publish(0)
    agents.publish(1)
    return [
        build_config(
            "wait",
            {
                "peers": "2",
                "index": str(i),
                "service": "headless-svc",
                "namespace": "default",
                "listen": agents.address(i),
                "dns_server": f"{agents.dns.address}:{agents.dns.port}",
                "timeout": "20s",
            },
            PodFacts(hostname=f"example-job-{i}"),
        )
        for i in range(2)
    ]


async def _both(configs: list[Config]) -> list[Outcome]:
    outcomes: list[Outcome] = []

    async def one(i: int) -> None:
        outcomes.append(await serve_and_wait(configs[i], report=lambda e: None))

    async with anyio.create_task_group() as tg:
        for i in range(2):
            tg.start_soon(one, i)
    return outcomes


def _check(outcomes: list[Outcome]) -> None:
    assert len(outcomes) == 2
    for outcome in outcomes:
        assert [p.fqdn for p in outcome.peers] == [fqdn(0), fqdn(1)]
        assert outcome.how


# pytest runs a module's tests in the order written: trio, asyncio, then trio again, in one process.
def test_two_agents_in_one_process_under_trio(agents: Agents) -> None:
    _check(anyio.run(_both, _two_published(agents), backend="trio"))


@pytest.mark.asyncio
async def test_two_agents_in_one_process_under_asyncio(agents: Agents) -> None:
    _check(await _both(_two_published(agents)))


def test_two_agents_in_one_process_under_trio_after_asyncio(agents: Agents) -> None:
    """trio after asyncio in one process is the case dnspython's sniffed default breaks."""
    _check(anyio.run(_both, _two_published(agents), backend="trio"))


async def _read_while_closed() -> list[str]:
    """What a reader waiting on a session's channel gets when the channel is closed."""
    failures: list[str] = []

    async def hold(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            await anyio.sleep_forever()

    async with await anyio.create_tcp_listener(local_host="127.0.0.1") as listener:
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        async with anyio.create_task_group() as tg:
            tg.start_soon(listener.serve, hold)
            channel = await connect("127.0.0.1", port)

            async def read() -> None:
                try:
                    await channel.receive(None)
                except WireError as exc:
                    failures.append(str(exc))

            async with anyio.create_task_group() as readers:
                readers.start_soon(read)
                await anyio.wait_all_tasks_blocked()
                await channel.aclose()
            tg.cancel_scope.cancel()
    return failures


def test_closing_a_session_wakes_its_reader_under_trio() -> None:
    """agent.io.tcp wakes a task waiting on a socket it closes with anyio.notify_closing, on trio
    trio's own: the reader sees the connection's end, neither hangs nor crashes (the same under
    asyncio: tests/integration/test_probes.py)."""
    assert anyio.run(_read_while_closed, backend="trio") == ["connection closed"]
