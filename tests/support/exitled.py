"""What the exit-led tests of both tiers (integration, faults) do alike with a real agent: say a
hello to it from an address of their choosing, and read the workload's pid off its log."""

from __future__ import annotations

import re
import socket

from agent.protocol.wire import Hello, decode, encode

__all__ = ["say_hello", "workload_pid"]


def say_hello(source: str, target: tuple[str, int], hello: Hello) -> Hello:
    """Say ``hello`` to ``target`` from ``source``; the reply, once the server has closed (so
    it has done all it does with a hello before this returns)."""
    with socket.create_connection(target, timeout=5, source_address=(source, 0)) as conn:
        conn.sendall(encode(hello))
        conn.settimeout(5)
        received = b""
        while chunk := conn.recv(4096):
            received += chunk
    reply = decode(received.split(b"\n")[0])
    assert isinstance(reply, Hello)
    return reply


def workload_pid(text: str) -> int:
    """The pid in an agent's "workload started (pid N)" line, matched: the workload's own
    output may share the line (both write the pod's stderr)."""
    found = re.search(r"workload started \(pid (\d+)\)", text)
    assert found is not None, text
    return int(found[1])
