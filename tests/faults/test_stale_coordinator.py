"""A live old instance of index 0 that DNS no longer lists (an outside review's break), with real
agent processes on loopback and a DNS server whose records the test moves.

Pod 0 runs at A, pod 1 opens its barrier session to it. Pod 0 is then replaced: a new instance
starts at B, DNS moves pod 0's name and the Service's entry from A to B, and the old instance
stays up (a terminating pod, or one on a node cut off from the API server). Pod 2 starts last.
Before the fix the new pod 0, pod 1 and pod 2 all exited 3 at their timeout (or never turned
ready in sidecar mode): pod 1 "arrived, waiting for the verdict" on its session with the old
instance, the new one waited for pod 1, "not connected".
"""

from __future__ import annotations

import http.client
import socket
import time

import pytest

from tests.faults.conftest import AgentProcess, Job, Record, agent_argv
from tests.support.faultdns import FaultDNS

pytestmark = pytest.mark.timeout(90)

#: well inside the pods' --timeout: a release stuck until it would be a failure
RELEASED_WITHIN = 12.0


def _hex(address: str, port: int) -> str:
    """An IPv4 endpoint as /proc/net/tcp writes it (the address's bytes in host order)."""
    packed = socket.inet_aton(address)
    return f"{int.from_bytes(packed, 'little'):08X}:{port:04X}"


def _session_open(src: str, dst: str, port: int, timeout: float = 15.0) -> None:
    """Until the kernel has an established TCP connection from ``src`` to ``dst``:``port``
    (pod 1's barrier session with the old instance: probes come and go, the session stays)."""
    remote = _hex(dst, port)
    local = _hex(src, 0)[:8]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open("/proc/net/tcp") as table:
            rows = [line.split() for line in table.readlines()[1:]]
        if any(r[1].startswith(local) and r[2] == remote and r[3] == "01" for r in rows):
            return
        time.sleep(0.05)
    raise AssertionError(f"no session from {src} to {dst}:{port}")


def _ready(job: Job, address: str) -> int:
    connection = http.client.HTTPConnection(address, job.port + 1, timeout=5)
    try:
        connection.request("GET", "/readyz")
        return connection.getresponse().status
    finally:
        connection.close()


@pytest.mark.parametrize("command", ["wait", "sidecar"])
def test_a_live_old_coordinator_that_dns_no_longer_lists_stalls_nobody(
    fault_dns: FaultDNS, processes: list[AgentProcess], record: Record, command: str
) -> None:
    """The new pod 0, pod 1 and pod 2 are released within seconds (wait: exit 0; sidecar:
    /readyz 200) while the old instance is still up, and the old instance is released by
    nobody; in sidecar mode it says it was replaced (in wait mode everyone may have left
    before it looks: then there is nobody left to find)."""
    job = Job(fault_dns, 3, timeout="30s")
    job.publish(0, 1)

    def start(i: int, *extra: str, at: str = "") -> AgentProcess:
        argv = agent_argv(job, command, i, "--timeout", job.timeout, *extra)
        if at:
            argv[argv.index("--listen") + 1] = at
        agent = AgentProcess(argv)
        processes.append(agent)
        return agent

    old = start(0, "--timeout", "90s")  # the old instance outlives everyone
    pod1 = start(1)
    _session_open(job.address(1), job.address(0), job.port)
    b = job.address(6)
    job.published[0] = b  # DNS moves pod 0's name and the Service's entry to B
    job.dns.set(job.fqdn(0), b)
    job.dns.set(job.service, *(job.published[k] for k in sorted(job.published)))
    new = start(0, at=b)
    new.wait_line(f"reached {job.fqdn(1)}")
    job.publish(2)
    began = time.monotonic()
    pod2 = start(2)
    for agent in (new, pod1, pod2):
        agent.wait_line("barrier released", timeout=RELEASED_WITHIN)
    if command == "wait":
        assert [a.finish(timeout=RELEASED_WITHIN) for a in (new, pod1, pod2)] == [0, 0, 0]
    else:
        for agent, address in ((new, b), (pod1, job.address(1)), (pod2, job.address(2))):
            agent.wait_line("serving /readyz")
            assert _ready(job, address) == 200
    took = time.monotonic() - began
    assert took < RELEASED_WITHIN
    record(released_s=round(took, 2))
    if command == "sidecar":  # the new one stays up: the old one's name leads there
        old.wait_line(f"{job.fqdn(0)} (this pod) was replaced: a newer instance of pod 0 answers")
    assert old.proc.poll() is None  # still up: nobody waited for it to go
    assert "barrier released" not in old.stderr
