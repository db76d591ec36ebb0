"""``peer-agent doctor`` reports a configuration problem as ``wait`` does: exit 2, one line."""

from __future__ import annotations

import pytest

from agent.commands.doctor import diagnose
from agent.config.parse import build_config
from agent.errors import ConfigError
from agent.topology.podfiles import PodFacts

pytestmark = pytest.mark.timeout(10)


@pytest.mark.asyncio
async def test_no_nameserver_is_a_usage_error_not_a_crash() -> None:
    """It once crashed (ValueError from the resolver, exit 1 'internal error') where ``wait``
    said exit 2 for the same resolv.conf."""
    config = build_config(
        "doctor",
        {"peers": "2", "index": "0", "service": "svc", "namespace": "ns"},
        PodFacts(hostname="job-0", resolv_conf="search ns.svc.cluster.local\n"),
    )
    with pytest.raises(ConfigError) as raised:
        await diagnose(config)
    assert raised.value.exit_code == 2
    [problem] = raised.value.problems
    assert problem.startswith("--dns-server / PEER_AGENT_DNS_SERVER: no DNS server")
