"""Container probes (httpGet, tcpSocket, exec), run against the pod's address.

kubelet probes from the node; here the probe's socket is made inside the pod's namespace and
connects to the pod's own address, which exercises the same listener.
"""

from __future__ import annotations

import socket
import subprocess

from tests.harness.netns import PodNet
from tests.harness.nsutil import family_of, netns_socket
from tests.harness.workload import Container, Probe


def _port(probe: Probe, container: Container) -> int | None:
    if isinstance(probe.port, str):
        named = [number for name, number in container.ports if name == probe.port]
        return named[0] if named else None
    return probe.port


def probe_ok(probe: Probe, container: Container, net: PodNet, timeout: float) -> bool:
    if probe.command:
        argv = ["ip", "netns", "exec", net.netns, *probe.command]
        try:
            return subprocess.run(argv, capture_output=True, timeout=timeout).returncode == 0
        except subprocess.TimeoutExpired:
            return False
    port = _port(probe, container)
    if port is None:
        return False
    try:
        with netns_socket(net.netns, family_of(net.address), socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect((net.address, port))
            if probe.http_path is None:
                return True
            host = f"[{net.address}]" if ":" in net.address else net.address
            request = f"GET {probe.http_path} HTTP/1.1\r\nHost: {host}\r\n"
            sock.sendall((request + "Connection: close\r\n\r\n").encode())
            status = sock.recv(64).split(b" ", 2)
            # kubelet: any status from 200 to 399 is success.
            return len(status) > 1 and status[1].isdigit() and 200 <= int(status[1]) < 400
    except OSError:
        return False
