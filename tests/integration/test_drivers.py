"""The two drivers behave alike where a peer or DNS misbehaves: the same exit code and the same
lines, digits aside (times, ports, pids).

Pod 0 is a real agent (`wait --peers 2`); pod 1's address holds what each case needs: a
listener that answers with garbage, one that says nothing, nothing at all (refused). DNS is a
stub (``tests.dns_stub``), or a socket that never answers (the DNS timeout case). SIGTERM ends a
wait that cannot finish. Each case runs over each driver (``--driver``), and the lines of the
two runs are compared.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

from tests.dns_stub import StubDnsServer
from tests.integration.conftest import DRIVERS, wait_for_line

pytestmark = pytest.mark.timeout(90)

_NET = 100 + os.getpid() % 100  # 127.<net>.x.y: apart from other checkouts' runs
POD = [f"127.{_NET}.7.1", f"127.{_NET}.7.2"]
SERVICE = "svc.ns.svc.cluster.local."
NAMES = {f"job-{i}.svc.ns.svc.cluster.local.": POD[i] for i in range(2)}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def _peer(port: int, answer: bytes | None) -> Iterator[None]:
    """Pod 1's port: each connection gets ``answer`` then stays open (None: it gets nothing)."""
    server = socket.create_server((POD[1], port))
    held: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            held.append(conn)
            if answer is not None:
                with contextlib.suppress(OSError):
                    conn.sendall(answer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(5)
        for conn in held:
            conn.close()
        server.close()


def _agent(driver: str, dns_port: int, port: int, timeout: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PEER_AGENT_")}
    return subprocess.Popen(
        [sys.executable, "-m", "agent", "wait", "--peers", "2", "--index", "0",
         "--hostname", "job-0", "--service", "svc", "--namespace", "ns",
         "--dns-server", f"127.0.0.1:{dns_port}", "--listen", POD[0], "--port", str(port),
         "--timeout", timeout, "--driver", driver],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip


def _lines(err: str) -> list[str]:
    """The lines that say how the wait went, digits aside; the progress lines (their timing
    is the pace's) and the debug line naming the driver left out."""
    keep = [line for line in err.splitlines() if "still waiting" not in line]
    return [re.sub(r"\d+(\.\d+)?", "N", line) for line in keep]


def _wait(driver: str, answer: bytes | None, *, listen: bool, dns: str = "stub") -> tuple[int, str]:
    port = _free_port()
    peer = _peer(port, answer) if listen else contextlib.nullcontext()
    with peer, contextlib.ExitStack() as stack:
        if dns == "stub":
            dns_port = stack.enter_context(StubDnsServer({**NAMES, SERVICE: POD})).port
        else:  # a server that never answers
            silent = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
            silent.bind(("127.0.0.1", 0))
            dns_port = silent.getsockname()[1]
        proc = _agent(driver, dns_port, port, "4s")
        _, err = proc.communicate(timeout=60)
    return proc.returncode, err


CASES = {
    "garbage": dict(answer=b"\x00\xffnot a hello\n", listen=True),
    "silent peer": dict(answer=None, listen=True),
    "refused": dict(answer=None, listen=False),
    "DNS timeout": dict(answer=None, listen=False, dns="silent"),
}


@pytest.mark.parametrize("case", CASES)
def test_a_misbehaving_peer_or_dns_reads_the_same_in_both_drivers(case: str) -> None:
    runs = {driver: _wait(driver, **CASES[case]) for driver in DRIVERS}  # type: ignore[arg-type]
    for driver, (code, err) in runs.items():
        assert code == 3, f"{driver}: exit {code}\n{err}"
        assert "missing job-1" in err, f"{driver}:\n{err}"
    anyio_lines, selectors_lines = (_lines(runs[d][1]) for d in DRIVERS)
    assert anyio_lines == selectors_lines, "\n".join(
        ["anyio:", *anyio_lines, "selectors:", *selectors_lines]
    )


def test_sigterm_ends_a_wait_alike_in_both_drivers() -> None:
    results = {}
    for driver in DRIVERS:
        port = _free_port()
        with StubDnsServer({**NAMES, SERVICE: POD}) as dns, _peer(port, None):
            proc = _agent(driver, dns.port, port, "60s")
            wait_for_line(proc, "topology")  # started: its loop listens for signals
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=30)
        results[driver] = (proc.returncode, out, _lines(err))
    assert results["anyio"][0] == results["selectors"][0] == 128 + signal.SIGTERM
    assert results["anyio"][1:] == results["selectors"][1:]
