"""Peers that disagree about the peer count abort everyone with exit 4, whatever the probe (an
outside review; docs/guarantee.md, the README's exit codes): real agent processes on loopback
and the fault DNS."""

from __future__ import annotations

import pytest

from tests.faults.conftest import AgentProcess, Job, agent_argv
from tests.support.faultdns import FaultDNS

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize("probe", ["dns", "icmp"])
def test_the_pod_with_another_peer_count_exits_4_too(
    fault_dns: FaultDNS, processes: list[AgentProcess], probe: str
) -> None:
    """Pods 0 and 1 run with ``--peers 3``, pod 2 with ``--peers 4`` (PEER_AGENT_PEERS not
    equal to completions in one pod). All three must exit 4 ("peer count differs"), the code a
    podFailurePolicy fails the Job on. (Pods 0 and 1 exited 4; pod 2, the misconfigured one,
    waited for a pod 3 that does not exist and exited 3 at its timeout, "1 peer(s) missing",
    the code the README's policy counts and retries.)"""
    job = Job(fault_dns, 3, timeout="8s")
    job.publish()
    wrong = Job(fault_dns, 4, timeout=job.timeout, net=job.net, port=job.port)
    pods = [
        AgentProcess(agent_argv(j, "wait", i, "--timeout", job.timeout, "--probe", probe))
        for i, j in ((0, job), (1, job), (2, wrong))
    ]
    processes.extend(pods)
    codes = [pod.finish() for pod in pods]
    assert codes == [4, 4, 4], pods[2].stderr
