"""A named barrier when a peer was replaced after the start barrier and its old sidecar is still
up (review 11, item 4).

Pod 2 is replaced while its old pod terminates (``podReplacementPolicy: TerminatingOrFailed``,
a Job's default): two sidecars of index 2, at two addresses, DNS naming the new one, and the
new one passed its start barrier against pods 0 and 1's sidecars. The processes of pods 0, 1
and of the old pod 2 ask for barrier ``ckpt``; the new pod 2's has not yet. Nobody may pass
``ckpt`` before the new pod 2's process asks: the old pod's is going away.
"""

from __future__ import annotations

import concurrent.futures
import http.client

import pytest

from tests.faults.conftest import AgentProcess, Job, agent_argv
from tests.support.faultdns import FaultDNS

pytestmark = pytest.mark.timeout(90)


def _post(address: str, port: int, path: str) -> int:
    conn = http.client.HTTPConnection(address, port, timeout=40)
    try:
        conn.request("POST", path)
        reply = conn.getresponse()
        reply.read()
        return reply.status
    finally:
        conn.close()


def _sidecar(job: Job, i: int, listen: str | None = None) -> AgentProcess:
    argv = agent_argv(job, "sidecar", i, "--timeout", "60s")
    if listen is not None:
        argv[argv.index("--listen") + 1] = listen
    return AgentProcess(argv)


def test_no_pod_passes_a_named_barrier_against_a_replaced_instance_still_up(
    fault_dns: FaultDNS, processes: list[AgentProcess]
) -> None:
    job = Job(fault_dns, 3)
    job.publish()
    old = [_sidecar(job, i) for i in range(3)]
    processes.extend(old)
    for pod in old:
        pod.wait_line("barrier released")
    moved = f"127.0.{job.net}.100"
    job.move(2, moved)
    new = _sidecar(job, 2, listen=moved)
    processes.append(new)
    new.wait_line("barrier released")
    path = "/barrier/ckpt?timeout=30s"
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        asked = [pool.submit(_post, job.address(i), job.port + 1, path) for i in range(3)]
        # pods 0 and 1 wait for the new pod 2: their named barrier's first progress line (5 s
        # in) comes before any pass
        for pod in old[:2]:
            pod.wait_line("ckpt: waiting")
        passed = [i for i in range(2) if asked[i].done()]
        late = pool.submit(_post, moved, job.port + 1, path)
        statuses = [f.result() for f in [*asked[:2], late]]
    assert passed == [], [old[i].stderr for i in passed]
    assert statuses == [200, 200, 200], [pod.stderr for pod in [*old[:2], new]]
