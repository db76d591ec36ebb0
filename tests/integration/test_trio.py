"""The runner is anyio code: it runs under trio too (dnspython's backend passed explicitly)."""

from __future__ import annotations

import anyio
import pytest

from agent.config import PodFacts, build_config
from agent.runner import serve_and_wait
from agent.status import Outcome
from tests.integration.conftest import Agents, fqdn

pytestmark = pytest.mark.timeout(30)


def _run_two(agents: Agents, backend: str) -> list[Outcome]:
    configs = [
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
    outcomes: list[Outcome] = []

    async def both() -> None:
        async def one(i: int) -> None:
            outcomes.append(await serve_and_wait(configs[i], report=lambda e: None))

        async with anyio.create_task_group() as tg:
            for i in range(2):
                tg.start_soon(one, i)

    anyio.run(both, backend=backend)
    return outcomes


@pytest.mark.parametrize("backend", ["trio", "asyncio", "trio"])
def test_two_agents_in_one_process(agents: Agents, backend: str) -> None:
    """trio after asyncio in one process is the case dnspython's sniffed default breaks."""
    agents.publish(0)
    agents.publish(1)
    outcomes = _run_two(agents, backend)
    assert len(outcomes) == 2
    for outcome in outcomes:
        assert [p.fqdn for p in outcome.peers] == [fqdn(0), fqdn(1)]
        assert outcome.how
