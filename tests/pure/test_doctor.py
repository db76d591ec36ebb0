"""``peer-agent doctor`` reports a configuration problem as ``wait`` does: exit 2, one line."""

from __future__ import annotations

import pytest

from agent.commands.doctor import diagnose
from agent.config.parse import build_config
from agent.core.causes import Cause, Failure
from agent.core.inputs import Resolution
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


@pytest.mark.asyncio
async def test_a_training_operator_pod_is_described_as_asked_for_by_name() -> None:
    """A PyTorchJob's pods are each their own Service: doctor says there is no one Service to
    ask, instead of printing 'None'."""
    env = {"PET_NNODES": "2", "PET_NODE_RANK": "1", "PET_MASTER_ADDR": "pt-master-0"}
    resolv = "search ml.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.0.0.10\n"
    facts = PodFacts(hostname="pt-worker-0", resolv_conf=resolv, environ=env)
    config = build_config("doctor", {}, facts)

    async def nxdomain(name: str) -> Resolution:
        return Resolution(failure=Failure("NXDOMAIN", Cause.NXDOMAIN))

    report = await diagnose(config, resolve=nxdomain)
    facts_shown = dict(report.facts)
    assert facts_shown["service"] == (
        "none (each peer is asked for by its own name) in namespace ml, zone cluster.local"
    )
    assert facts_shown["peer names"] == (
        "pt-master-0.ml.svc.cluster.local. … pt-worker-0.ml.svc.cluster.local."
    )
    assert facts_shown["values"] == (  # where each came from, as the start line says it
        "peers from PET_NNODES; index and job from the hostname; namespace and zone from "
        "/etc/resolv.conf"
    )
