"""A coordinator whose pod is up but whose agent is not costs its members one DNS query per
``Timing.refused_reuse``, not one per dial: a real member against a DNS server that notes every
query's name (the count by name is what cluster DNS does not tell)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from agent.core.timing import DEFAULT_TIMING
from tests.dns_stub import StubDnsServer

NET = f"127.0.{40 + os.getpid() % 200}"  # per process: runs of other checkouts do not share it


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.timeout(60)
def test_a_member_asks_for_a_refusing_coordinator_once() -> None:
    coordinator, member = f"{NET}.1", f"{NET}.2"  # nothing listens at the coordinator's
    names: dict[str, str | list[str]] = {
        "job-0.svc.ns.svc.cluster.local.": coordinator,
        "job-1.svc.ns.svc.cluster.local.": member,
        "svc.ns.svc.cluster.local.": [coordinator, member],
    }
    wait = 3.0
    assert wait < DEFAULT_TIMING.refused_reuse
    with StubDnsServer(names) as dns:
        done = subprocess.run(
            [sys.executable, "-m", "agent", "wait", "--peers", "2", "--index", "1",
             "--hostname", "job-1", "--service", "svc", "--namespace", "ns",
             "--dns-server", f"127.0.0.1:{dns.port}", "--listen", member,
             "--port", str(_free_port()), "--timeout", f"{wait:g}s"],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        asked = [name for _, name in dns.queries]
    assert done.returncode == 3, done.stderr[-2000:]
    assert "refused" in done.stderr  # the coordinator was dialled, and refused, all along
    assert asked.count("job-0.svc.ns.svc.cluster.local.") == 1, asked
