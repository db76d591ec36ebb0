"""The Python API with real peers: agent processes and one in-process call, over a real unbound."""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any

import pytest
import trio

import agent
from agent.errors import BarrierTimeout, ConfigError
from tests.integration.conftest import JOB, NAMESPACE, SERVICE, Agents, finish, fqdn

pytestmark = pytest.mark.timeout(60)


def _options(agents: Agents, i: int, peers: int, **more: Any) -> dict[str, Any]:
    return {
        "peers": peers,
        "index": i,
        "hostname": f"{JOB}-{i}",
        "service": SERVICE,
        "namespace": NAMESPACE,
        "dns_server": f"{agents.dns.address}:{agents.dns.port}",
        "listen": agents.address(i),
        "timeout": 30,
        **more,
    }


def _two_processes_and_me(agents: Agents) -> list[Any]:
    """Three pods published; pods 1 and 2 are agent processes, pod 0 is the caller."""
    for i in range(3):
        agents.publish(i)
    return [agents.start("wait", i, 3, "--timeout", "30s") for i in (1, 2)]


def _check(result: agent.Result, agents: Agents) -> None:
    assert result.rank == 0
    assert result.world_size == 3
    assert result.master_addr == fqdn(0)
    assert [p.fqdn for p in result.peers] == [fqdn(i) for i in range(3)]
    assert [p.hostname for p in result.peers] == [f"{JOB}-{i}" for i in range(3)]
    assert [p.addresses for p in result.peers] == [(agents.address(i),) for i in range(3)]
    assert result.how


@pytest.mark.asyncio
async def test_await_barrier_under_asyncio_with_two_agent_processes(agents: Agents) -> None:
    procs = _two_processes_and_me(agents)
    result = await agent.barrier(**_options(agents, 0, 3))
    _check(result, agents)
    for proc in procs:
        code, _, err = finish(proc)
        assert code == 0, err


def test_barrier_under_trio(agents: Agents) -> None:
    procs = _two_processes_and_me(agents)
    result = trio.run(functools.partial(agent.barrier, **_options(agents, 0, 3)))
    _check(result, agents)
    for proc in procs:
        assert finish(proc)[0] == 0


def test_wait_blocks_and_writes_the_files_asked_for(agents: Agents, tmp_path: Any) -> None:
    procs = _two_processes_and_me(agents)
    hostfile = tmp_path / "hosts"
    result = agent.wait(**_options(agents, 0, 3, hostfile=str(hostfile), slots=2))
    _check(result, agents)
    assert hostfile.read_text() == "".join(f"{fqdn(i)} slots=2\n" for i in range(3))
    for proc in procs:
        assert finish(proc)[0] == 0


def test_a_missing_peer_raises_barrier_timeout_with_its_reason(agents: Agents) -> None:
    agents.publish(0)
    with pytest.raises(BarrierTimeout) as caught:
        agent.wait(**_options(agents, 0, 2, timeout="1s"))
    assert caught.value.exit_code == 3
    assert any(fqdn(1) in line and "not in DNS" in line for line in caught.value.missing)


def test_bad_options_raise_config_error_naming_flag_and_variable(agents: Agents) -> None:
    with pytest.raises(ConfigError) as caught:
        agent.wait(**_options(agents, 0, 3, port="nope", probe="udp"))
    assert caught.value.exit_code == 2
    problems = "\n".join(caught.value.problems)
    assert "--port / PEER_AGENT_PORT" in problems
    assert "--probe / PEER_AGENT_PROBE" in problems
    with pytest.raises(ConfigError, match="unknown options: colour"):
        agent.wait(**_options(agents, 0, 3, colour="blue"))
    with pytest.raises(TypeError, match="service= takes a str"):
        agent.wait(**_options(agents, 0, 3, service=3))


def test_the_logger_gets_each_line_at_its_level(
    agents: Agents, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A pod alone passes at once; its token file is readable by every user (a warning). The
    lines reach the ``peer_agent`` logger at their levels, and ``log_level=`` drops those
    below it."""
    agents.publish(0)
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    token.chmod(0o644)
    options = _options(agents, 0, 1, token_file=str(token))
    with caplog.at_level(logging.DEBUG, logger="peer_agent"):
        agent.wait(**options)
    said = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert any(level == logging.WARNING and "readable by every user" in m for level, m in said)
    assert any(level == logging.INFO and m.startswith("barrier released") for level, m in said)
    released = next(r for r in caplog.records if r.getMessage().startswith("barrier released"))
    assert released.__dict__["peer_agent"]["elapsed"] >= 0  # the JSON fields: the extra
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="peer_agent"):
        agent.wait(**options, log_level="warning")
    assert [r.levelno for r in caplog.records] == [logging.WARNING], caplog.records
