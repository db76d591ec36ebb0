"""Reach into a named network namespace from this process without spawning anything.

A socket belongs to the network namespace it was created in, whichever thread uses it later.
So a short-lived thread joins the namespace (setns affects only the calling thread), creates
the socket or writes the sysctl file, and exits; the rest of the process stays in its own
namespace.
"""

from __future__ import annotations

import ctypes
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

_CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)
NETNS_DIR = Path("/run/netns")


def _enter(netns: str) -> None:
    fd = os.open(NETNS_DIR / netns, os.O_RDONLY)
    try:
        if _libc.setns(fd, _CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({netns}): {os.strerror(err)}")
    finally:
        os.close(fd)


def in_netns(netns: str | None, fn: Callable[[], T]) -> T:
    """Run fn in a fresh thread that has joined netns (or here, if netns is None)."""
    if netns is None:
        return fn()
    box: dict[str, object] = {}

    def work() -> None:
        try:
            _enter(netns)
            box["value"] = fn()
        except BaseException as exc:  # handed back to the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=work, name=f"netns-{netns}")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]


def family_of(address: str) -> socket.AddressFamily:
    """AF_INET6 for an IPv6 literal, else AF_INET."""
    return socket.AF_INET6 if ":" in address else socket.AF_INET


def netns_socket(netns: str | None, family: int, kind: int) -> socket.socket:
    """A socket that lives in netns (in this process's namespace if netns is None)."""
    return in_netns(netns, lambda: socket.socket(family, kind))


def write_sysctl(netns: str | None, key: str, value: str) -> None:
    """Set a per-namespace sysctl (e.g. net.ipv4.ping_group_range) inside netns.

    /proc/sys/net is resolved against the opening thread's namespace, hence the thread.
    """
    path = Path("/proc/sys") / key.replace(".", "/")

    def write() -> None:
        path.write_text(value + "\n")

    in_netns(netns, write)


def free_port(netns: str | None, host: str) -> int:
    """A port free for both UDP and TCP on host inside netns (DNS serves both)."""

    def pick() -> int:
        for _ in range(50):
            with socket.socket(family_of(host), socket.SOCK_DGRAM) as udp:
                udp.bind((host, 0))
                port = int(udp.getsockname()[1])
                with socket.socket(family_of(host), socket.SOCK_STREAM) as tcp:
                    try:
                        tcp.bind((host, port))
                    except OSError:
                        continue
                    return port
        raise OSError(f"no port free for both UDP and TCP on {host}")

    return in_netns(netns, pick)
