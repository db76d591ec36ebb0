"""The ICMP probe in a real network namespace, with and without the permissions it needs."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest

pytestmark = [pytest.mark.timeout(60), pytest.mark.netns]

DROP_NET_RAW = ["setpriv", "--inh-caps=-net_raw", "--bounding-set=-net_raw", "--"]
PING = (
    "import anyio, sys; from agent.io.icmp import ping; "
    "print(anyio.run(lambda: ping('127.0.0.1', timeout=2)) or 'reply')"
)


@pytest.fixture
def netns() -> Iterator[str]:
    if os.geteuid() != 0:
        pytest.fail("network namespace tests need root (CI runs as root)")
    name = f"pa-icmp-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def _in_ns(
    ns: str, ping_range: str, argv: list[str], drop_net_raw: bool
) -> subprocess.CompletedProcess[str]:
    subprocess.run(
        ["ip", "netns", "exec", ns, "sysctl", "-qw", f"net.ipv4.ping_group_range={ping_range}"],
        check=True,
    )
    prefix = ["ip", "netns", "exec", ns, *(DROP_NET_RAW if drop_net_raw else [])]
    return subprocess.run(
        prefix + argv, capture_output=True, text=True, timeout=30, cwd=os.getcwd()
    )


@pytest.mark.parametrize(
    ("ping_range", "drop_net_raw"),
    [
        pytest.param("0 2147483647", True, id="unprivileged-datagram-socket"),
        pytest.param("1 0", False, id="raw-socket-with-CAP_NET_RAW"),
    ],
)
def test_echo_reply_either_way(netns: str, ping_range: str, drop_net_raw: bool) -> None:
    done = _in_ns(netns, ping_range, [sys.executable, "-c", PING], drop_net_raw)
    assert done.stdout.strip() == "reply", done.stderr


def test_neither_permission_is_a_clear_usage_error(netns: str) -> None:
    argv = [
        sys.executable,
        "-m",
        "agent",
        "wait",
        "--probe",
        "icmp",
        "--peers",
        "1",
        "--index",
        "0",
        "--hostname",
        "j-0",
        "--service",
        "s",
        "--namespace",
        "n",
        "--dns-server",
        "127.0.0.1",
    ]
    done = _in_ns(netns, "1 0", argv, drop_net_raw=True)
    assert done.returncode == 2
    assert "net.ipv4.ping_group_range" in done.stderr and "CAP_NET_RAW" in done.stderr
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if "error" in line]
    assert len(errors) == 1
