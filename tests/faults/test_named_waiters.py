"""Named barriers against what can go wrong around them: idle connections on the health port, a
client that asks before the sidecar's start barrier has passed, a client that gives up or dies,
more names than a sidecar keeps. Real sidecars and real ``peer-agent barrier`` clients on
loopback (issue 21, holes 6, 8 and 13).
"""

from __future__ import annotations

import contextlib
import functools
import gc
import socket
import subprocess
import sys
import time
import tracemalloc

import anyio
import pytest

from agent.commands.sidecar import serve_sidecar
from agent.config.parse import build_config
from agent.core.log import LogLine
from agent.io.supervisor import Supervisor
from agent.topology.podfiles import PodFacts
from tests.faults.conftest import (
    NAMESPACE,
    ROOT,
    SERVICE,
    AgentProcess,
    Job,
    agent_argv,
    wait_port,
)
from tests.support.faultdns import FaultDNS

pytestmark = pytest.mark.timeout(60)


def _sidecars(job: Job, processes: list[AgentProcess], *indices: int) -> list[AgentProcess]:
    agents = [AgentProcess(agent_argv(job, "sidecar", i)) for i in indices]
    processes.extend(agents)
    return agents


def _client(job: Job, i: int, name: str, *more: str) -> subprocess.Popen[str]:
    argv = ["barrier", name, "--listen", job.address(i), "--health-port", str(job.port + 1)]
    return subprocess.Popen(
        [sys.executable, "-m", "agent", *argv, *more],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(client: subprocess.Popen[str], timeout: float = 30) -> tuple[int, str]:
    try:
        _, err = client.communicate(timeout=timeout)
    finally:
        if client.poll() is None:
            client.kill()
            client.communicate()
    return client.returncode, err


def _idle(job: Job, i: int, count: int) -> list[socket.socket]:
    """``count`` connections to pod ``i``'s health port that never send a byte."""
    return [socket.create_connection((job.address(i), job.port + 1)) for _ in range(count)]


def _readyz(job: Job, i: int) -> bytes:
    with socket.create_connection((job.address(i), job.port + 1), timeout=5) as conn:
        conn.sendall(b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
        got = b""
        while chunk := conn.recv(4096):
            got += chunk
        return got.split(b"\r\n", 1)[0]


def test_idle_connections_on_the_health_port_do_not_cut_a_waiting_client(
    fault_dns: FaultDNS, processes: list[AgentProcess]
) -> None:
    """Pod 0's workload waits in `peer-agent barrier ckpt` for pod 1's. Forty connections that
    say nothing reach pod 0's health port (more than the 32 it serves at once): kubelet's
    /readyz is still answered, and the waiting client is not dropped (it used to be, as the
    connection waiting longest, and exited 2 "no sidecar answers"): once pod 1's workload asks,
    both pass."""
    job = Job(fault_dns, 2)
    job.publish()
    for agent in _sidecars(job, processes, 0, 1):
        agent.wait_line("serving /readyz")
    waiting = _client(job, 0, "ckpt")
    processes[0].wait_line("barrier ckpt: topology")
    idle = _idle(job, 0, 40)
    try:
        assert _readyz(job, 0) == b"HTTP/1.1 200 "
        assert waiting.poll() is None, _finish(waiting)
        code, err = _finish(_client(job, 1, "ckpt"))
        assert code == 0, err
        code, err = _finish(waiting)
        assert code == 0, err
    finally:
        for conn in idle:
            conn.close()


def test_a_client_that_asks_before_the_start_barrier_passed_keeps_its_own_deadline(
    fault_dns: FaultDNS, processes: list[AgentProcess]
) -> None:
    """Pod 1 never comes, so pod 0's sidecar is still in its start barrier when its workload
    asks for `ckpt` with --timeout 2s: the client exits 3 (timed out) at its own deadline,
    saying the start barrier has not passed; it used to wait 2 s from the start barrier's
    release, which never came, and exit 2 ("no sidecar answers … timed out") 30 s later."""
    job = Job(fault_dns, 2)
    job.publish()
    [sidecar] = _sidecars(job, processes, 0)
    wait_port(job, 0)
    sidecar.wait_line("waiting")  # a progress line: its start barrier waits for pod 1
    started = time.monotonic()
    code, err = _finish(_client(job, 0, "ckpt", "--timeout", "2s"), timeout=20)
    took = time.monotonic() - started
    assert code == 3, err
    assert "start barrier" in err, err
    assert took < 10, took  # bounded by the test's timeout too; the old client took 32 s


@pytest.mark.parametrize("how", ["killed", "gave-up"])
def test_a_client_that_dies_or_gives_up_withdraws_its_pod(
    fault_dns: FaultDNS, processes: list[AgentProcess], how: str
) -> None:
    """Pod 2's workload asks for `ckpt`, then dies (SIGKILL) or gives up (its --timeout): pod
    2's request is withdrawn, so when pods 0 and 1 ask they do not pass on pod 2, whose process
    was told it failed (they used to: its sidecar kept asking on its behalf); they time out
    naming it. When pod 2's workload asks again, all three pass."""
    job = Job(fault_dns, 3)
    job.publish()
    sidecars = _sidecars(job, processes, 0, 1, 2)
    for agent in sidecars:
        agent.wait_line("serving /readyz")
    if how == "killed":
        doomed = _client(job, 2, "ckpt")
        sidecars[2].wait_line("barrier ckpt: topology")
        doomed.kill()
        doomed.communicate()
        sidecars[2].wait_line("barrier ckpt: withdrawn")
    else:
        code, err = _finish(_client(job, 2, "ckpt", "--timeout", "1s"))
        assert code == 3, err
    others = [_client(job, i, "ckpt", "--timeout", "3s") for i in (0, 1)]
    for client in others:
        code, err = _finish(client)
        assert code == 3, err
        assert "example-job-2" in err, err
    clients = [_client(job, i, "ckpt", "--timeout", "20s") for i in (0, 1, 2)]
    for client in clients:
        code, err = _finish(client)
        assert code == 0, err


# --- how many names -------------------------------------------------------------------------------
def test_a_new_name_beyond_the_bound_ends_the_one_released_longest_ago(
    fault_dns: FaultDNS, processes: list[AgentProcess]
) -> None:
    """A one-pod Job passes 70 named barriers one after the other (a barrier per checkpoint),
    more than the 64 names a sidecar keeps: every one passes (the 65th used to be refused, 429,
    exit 2, for the rest of the Job); the sidecar says once that the name released longest ago
    stops serving."""
    job = Job(fault_dns, 1)
    job.publish()
    [sidecar] = _sidecars(job, processes, 0)
    sidecar.wait_line("serving /readyz")
    for n in range(70):
        code, err = _finish(_client(job, 0, f"ckpt-{n}"))
        assert code == 0, (n, err)
    assert sidecar.stderr.count("released longest ago") == 1, sidecar.stderr
    assert "(ckpt-0 now)" in sidecar.stderr
    assert sidecar.stop() == 0, sidecar.stderr


async def _ask(host: str, port: int, name: str) -> bytes:
    """``POST /barrier/NAME?timeout=0.05``: the status line of the answer."""
    async with await anyio.connect_tcp(host, port) as conn:
        await conn.send(f"POST /barrier/{name}?timeout=0.05 HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        got = b""
        with contextlib.suppress(anyio.EndOfStream, anyio.BrokenResourceError):
            while b"\r\n" not in got:
                got += await conn.receive()
        return got.split(b"\r\n", 1)[0]


def _held_by_the_agent() -> int:
    """Bytes still allocated with the agent's code on the stack (not the DNS server's log, nor
    this test's clients)."""
    agent = tracemalloc.Filter(True, f"{ROOT}/agent/*", all_frames=True)
    snapshot = tracemalloc.take_snapshot().filter_traces([agent])
    return sum(stat.size for stat in snapshot.statistics("filename"))


@pytest.mark.timeout(180)
@pytest.mark.asyncio
async def test_names_that_time_out_leave_nothing_behind(
    fault_dns: FaultDNS, processes: list[AgentProcess]
) -> None:
    """Pod 0's sidecar (in this process, to count its memory) and pod 1's (a process that
    never asks): 800 names are asked for on pod 0, 32 at a time, each timing out after 50 ms.
    Past the first 200, the memory the agent holds grows by less than 100 KB: a name
    that is forgotten leaves nothing in the multiplexer or the named barriers (about 0.5 KB of
    each stayed, for ever)."""
    job = Job(fault_dns, 2)
    job.publish()
    processes.extend(_sidecars(job, processes[:0], 1))
    values = {
        "peers": "2",
        "index": "0",
        "service": SERVICE,
        "namespace": NAMESPACE,
        "listen": job.address(0),
        "port": str(job.port),
        "health_port": str(job.port + 1),
        "dns_server": fault_dns.server,
        "timeout": "30s",
    }
    config = build_config("sidecar", values, PodFacts(hostname=f"{job.job}-0"))
    bugs: list[LogLine] = []  # only those: every line kept would be memory held too
    released = anyio.Event()

    def report(event: LogLine) -> None:
        if event.kind in ("bug", "bugs"):
            bugs.append(event)

    held: list[int] = []

    async def ask(first: int, count: int) -> None:
        async with anyio.create_task_group() as clients:
            for n in range(first, first + count):
                clients.start_soon(_ask, job.address(0), job.port + 1, f"n{n}")

    async with anyio.create_task_group() as tg:
        serve = functools.partial(
            serve_sidecar, config, report=report, supervisor=Supervisor(report)
        )
        tg.start_soon(functools.partial(serve, released=released.set))
        await released.wait()
        tracemalloc.start(8)
        try:
            for rounds in (range(0, 200, 32), range(200, 800, 32)):
                for first in rounds:
                    await ask(first, 32)
                gc.collect()
                held.append(_held_by_the_agent())
        finally:
            tracemalloc.stop()
        tg.cancel_scope.cancel()
    assert not bugs, [e.message for e in bugs]
    assert held[1] - held[0] < 100_000, held
