"""A member replaced at a new address while its old one refuses (an outside review): real agent
processes on loopback, the fault DNS serving the old address for a while, then the new one.

With ``--probe tcp:PORT`` a name whose address refused is tried again at that address, without
asking DNS, for a window that doubles while DNS keeps giving it (``agent.core.refused``, up to
30 s). A replaced pod's old address refuses for as long as DNS is stale, so by the time DNS
lists the new address the window has grown and the pods go on probing the old one.
"""

from __future__ import annotations

import socket

import pytest

from tests.faults.conftest import AgentProcess, Job, agent_argv
from tests.support.faultdns import FaultDNS

pytestmark = pytest.mark.timeout(90)


def _start(
    processes: list[AgentProcess], job: Job, i: int, probe: str, at: str = ""
) -> AgentProcess:
    argv = agent_argv(job, "wait", i, "--timeout", job.timeout, "--probe", probe)
    if at:
        argv[argv.index("--listen") + 1] = at
    agent = AgentProcess(argv)
    processes.append(agent)
    return agent


def test_a_member_replaced_while_dns_is_stale_is_reached_once_dns_lists_its_new_address(
    fault_dns: FaultDNS, processes: list[AgentProcess]
) -> None:
    """Pods 0 and 1 (``--probe tcp:PORT``) reach each other; pod 1 is replaced by a pod at a new
    address, and its old address refuses the workload's port. DNS gives the old address for 20 s
    of the new pod's life, then the new one. Both must pass within seconds of that (the README:
    released "within seconds" of the last pod once DNS lists it), well before their 32 s
    timeout. (The new pod 1 tried its own name at the old, refusing address for its whole
    reuse window, 20 s by then, without asking DNS: both exited 3 at the timeout.)"""
    job = Job(fault_dns, 2, timeout="32s")
    port = job.port + 1  # the workload's port: free, a wait-mode job has no health port
    probe = f"tcp:{port}"
    new = job.address(5)
    # pod 0's port opens only once the old pod 1 is gone: it cannot reach pod 0 and arrive
    # before, and the barrier is not released without the new pod (it was, now and then, in
    # the moment between pod 0 reaching the old pod 1 and the test stopping it)
    workload = {i: socket.create_server((job.address(i), port)) for i in (1, 5)}
    try:
        job.publish()
        coordinator = _start(processes, job, 0, probe)
        old = _start(processes, job, 1, probe)
        coordinator.wait_line(f"reached {job.fqdn(1)}")
        old.stop()
        workload.pop(1).close()  # the old pod is gone: its address refuses
        workload[0] = socket.create_server((job.address(0), port))
        replaced = _start(processes, job, 1, probe, at=new)
        replaced.wait_line("waiting 20s", timeout=30)
        job.published[1] = new
        fault_dns.set(job.fqdn(1), new)
        fault_dns.set(job.service, job.address(0), new)
        codes = [agent.finish() for agent in (coordinator, replaced)]
    finally:
        for sock in workload.values():
            sock.close()
    assert codes == [0, 0], replaced.stderr
