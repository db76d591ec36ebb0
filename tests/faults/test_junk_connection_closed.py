"""A connection whose first line is junk is closed by the agent at once, under either driver
(review 11).

Under the selectors driver ``Peers.serve`` returns on the handshake's ``WireError`` without
closing the connection (only its ``finally`` for a dropped one does), so the socket stays open
until something else frees it (the next connection, the garbage collector): here 4 of the 5
lines below left their connection open past 5 s;
``printf '{"v":2,"t":[]}\\n' | nc POD 29300`` hangs instead of ending, and
``tests/faults/test_hostile_input.py::test_one_line_of_type_confused_json_ends_no_agent`` fails
with ``PEER_AGENT_DRIVER=selectors``. The anyio driver closes it as soon as the line is read.
"""

from __future__ import annotations

import socket

import pytest

from tests.faults.conftest import AgentProcess, Job, agent_argv, wait_port
from tests.faults.test_hostile_input import CRASHERS
from tests.integration.conftest import DRIVERS
from tests.support.faultdns import FaultDNS

pytestmark = pytest.mark.timeout(60)


def _closed_after(address: str, port: int, line: bytes) -> bool:
    """Send ``line`` and our end of the stream; whether the agent closed its end within 5 s
    (having said nothing)."""
    with socket.create_connection((address, port), timeout=5) as sock:
        sock.sendall(line)
        sock.shutdown(socket.SHUT_WR)
        try:
            return sock.recv(4096) == b""
        except TimeoutError:
            return False


@pytest.mark.parametrize("driver", DRIVERS)
def test_a_junk_line_gets_its_connection_closed(
    fault_dns: FaultDNS, processes: list[AgentProcess], driver: str
) -> None:
    job = Job(fault_dns, 2)
    job.publish(0)
    agent = AgentProcess(agent_argv(job, "wait", 0, "--driver", driver))
    processes.append(agent)
    wait_port(job, 0)
    closed = [_closed_after(job.address(0), job.port, line) for line in CRASHERS]
    assert agent.proc.poll() is None, agent.stderr
    agent.stop()
    assert closed == [True] * len(CRASHERS), closed
