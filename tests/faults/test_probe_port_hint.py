"""The timeout hint with ``--probe tcp:PORT`` names the port that refused (an outside review):
real agent processes on loopback and the fault DNS.

The README's troubleshooting table reads ``connect to port 29300: refused`` as "the peer's agent
is not up yet"; with ``--probe tcp:PORT`` the refused port is the workload's, and the agents are
up and talking to each other.
"""

from __future__ import annotations

import socket

import pytest

from tests.faults.conftest import AgentProcess, Job, agent_argv
from tests.support.faultdns import FaultDNS

pytestmark = pytest.mark.timeout(60)


def test_a_refused_workload_port_is_not_blamed_on_the_agent_port(
    fault_dns: FaultDNS, processes: list[AgentProcess]
) -> None:
    """Two pods with ``--probe tcp:PORT``; both agents are up, but only pod 0's workload
    listens on PORT. Pod 0 times out naming pod 1's refused PORT; its hint must not say that
    nobody listens on the agent's port and that pod 1's agent has not started (it has: its
    session with pod 0 is open). (It said "nobody listens on port AGENT_PORT: their agents
    have not started yet".)"""
    job = Job(fault_dns, 2, timeout="6s")
    job.publish()
    port = job.port + 1  # the workload's port: free, a wait-mode job has no health port
    with socket.create_server((job.address(0), port)):
        pods = [
            AgentProcess(
                agent_argv(job, "wait", i, "--timeout", job.timeout, "--probe", f"tcp:{port}")
            )
            for i in range(2)
        ]
        processes.extend(pods)
        codes = [pod.finish() for pod in pods]
    assert codes[0] == 3, pods[0].stderr
    assert f"connect to port {port}: refused" in pods[0].stderr, pods[0].stderr
    assert f"nobody listens on port {job.port}" not in pods[0].stderr, pods[0].stderr
