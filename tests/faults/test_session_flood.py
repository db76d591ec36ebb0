"""A member session that streams well-formed messages without pause must not stall the agent.

Review 11, break 1. Without a token anyone who reaches the port can open a member session
(a hello with ``role: member``); the agent then reads that session's messages until the core
closes it. Under the selectors driver the session's reader never yields to the loop while the
socket has data (``Conn.receive`` returns a buffered line, ``_more`` a ready ``recv``, without
awaiting), so a peer that keeps the socket full keeps the loop in one task: the core never
handles a single input, the listener answers no probe, and the agent outlives its own
``--timeout`` (SIGKILL was the only way out). The anyio driver checkpoints on every receive:
the same flood costs it nothing, and both pods release at once.

Pod 0 and pod 1 are real agents (``wait --peers 2``) on loopback with a DNS stub; a thread of
the test opens the session to pod 0 from an address DNS does not list and floods it with
``ack`` lines until the end. Each pod must release (exit 0) within its ``--timeout``.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from agent.protocol.wire import Ack, Hello, Identity, Role, encode
from tests.dns_stub import StubDnsServer
from tests.integration.conftest import DRIVERS, wait_for_line

pytestmark = pytest.mark.timeout(90)

_NET = 100 + (os.getpid() + 37) % 100  # 127.<net>.11.x: apart from other runs' addresses
POD = [f"127.{_NET}.11.1", f"127.{_NET}.11.2"]
STRANGER = f"127.{_NET}.11.50"
SERVICE = "svc.ns.svc.cluster.local."
NAMES = {f"job-{i}.svc.ns.svc.cluster.local.": POD[i] for i in range(2)}
TIMEOUT = 15  # each agent's --timeout, seconds: a release takes well under one


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _agent(driver: str, i: int, dns_port: int, port: int) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PEER_AGENT_")}
    return subprocess.Popen(
        [sys.executable, "-m", "agent", "wait", "--peers", "2", "--index", str(i),
         "--hostname", f"job-{i}", "--service", "svc", "--namespace", "ns",
         "--dns-server", f"127.0.0.1:{dns_port}", "--listen", POD[i], "--port", str(port),
         "--timeout", f"{TIMEOUT}s", "--driver", driver],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip


@contextlib.contextmanager
def _flood(port: int) -> Iterator[threading.Event]:
    """A member session to pod 0 that sends ``ack`` lines as fast as the socket takes them;
    the event is set once the first batch is in."""
    conn = socket.create_connection((POD[0], port), timeout=10, source_address=(STRANGER, 0))
    hello = Hello(Identity("job", "", 1, 2, port), Role.MEMBER, "ab" * 16)
    conn.sendall(encode(hello))
    assert b'"role":"reply"' in conn.recv(4096)  # a session, as any member's
    stop, flooding = threading.Event(), threading.Event()
    batch = encode(Ack()) * 4000

    def send() -> None:
        conn.settimeout(0.5)
        while not stop.is_set():
            try:
                conn.sendall(batch)
            except TimeoutError:
                continue
            except OSError:
                return  # the agent closed the session: the flood is over
            flooding.set()

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    try:
        yield flooding
    finally:
        stop.set()
        thread.join(5)
        conn.close()


def _finish(proc: subprocess.Popen[str], deadline: float) -> tuple[int | None, str]:
    """Its exit code by ``deadline`` (None: still running then)."""
    try:
        _, err = proc.communicate(timeout=max(deadline - time.monotonic(), 0.1))
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        return None, err
    return proc.returncode, err


@pytest.mark.parametrize("driver", DRIVERS)
def test_a_flooding_member_session_stalls_no_agent(driver: str) -> None:
    port = _free_port()
    procs: list[subprocess.Popen[str]] = []
    with StubDnsServer({**NAMES, SERVICE: POD}) as dns:
        try:
            procs.append(pod0 := _agent(driver, 0, dns.port, port))
            # past its own --timeout by more than an exit takes: a pod still there is stuck
            deadline = time.monotonic() + TIMEOUT + 10
            wait_for_line(pod0, "topology")  # its listener is open before it says so
            with _flood(port) as flooding:
                assert flooding.wait(10)
                procs.append(pod1 := _agent(driver, 1, dns.port, port))
                code1, err1 = _finish(pod1, deadline)
                code0, err0 = _finish(pod0, deadline)
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                proc.communicate()
    assert code0 == 0, f"pod 0 (flooded): exit {code0} (None: alive past --timeout)\n{err0}"
    assert code1 == 0, f"pod 1: exit {code1}\n{err1}"
