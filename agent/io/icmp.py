"""ICMP echo over an unprivileged datagram socket, or a raw one when only CAP_NET_RAW allows."""

from __future__ import annotations

import ipaddress
import os
import socket
import struct

import anyio

from agent.errors import ConfigError

__all__ = ["open_icmp_socket", "ping"]

_ECHO_REQUEST: dict[int, int] = {socket.AF_INET: 8, socket.AF_INET6: 128}
_ECHO_REPLY: dict[int, int] = {socket.AF_INET: 0, socket.AF_INET6: 129}
_PROTO: dict[int, int] = {
    socket.AF_INET: socket.IPPROTO_ICMP,
    socket.AF_INET6: socket.IPPROTO_ICMPV6,
}


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return int(~total & 0xFFFF)


def open_icmp_socket(family: int = socket.AF_INET) -> tuple[socket.socket, bool]:
    """(socket, is_raw). Raises ConfigError naming the missing permission when neither opens."""
    try:
        return socket.socket(family, socket.SOCK_DGRAM, _PROTO[family]), False
    except PermissionError:
        pass
    try:
        return socket.socket(family, socket.SOCK_RAW, _PROTO[family]), True
    except PermissionError:
        raise ConfigError(
            [
                "--probe / PEER_AGENT_PROBE: icmp needs an ICMP socket, and neither opens: "
                f"group {os.getgid()} is outside net.ipv4.ping_group_range (set the pod sysctl "
                "'net.ipv4.ping_group_range: 0 2147483647') and CAP_NET_RAW is not granted; "
                "or use the default probe 'tcp', which needs no capability"
            ]
        ) from None


async def ping(address: str, *, timeout: float, seq: int = 1) -> str:
    """One echo round trip; returns '' on a reply, else the reason."""
    family = socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET
    sock, raw = open_icmp_socket(family)
    ident = os.getpid() & 0xFFFF
    payload = b"peer-agent" + os.urandom(6)
    header = struct.pack("!BBHHH", _ECHO_REQUEST[family], 0, 0, ident, seq)
    packet = header + payload
    if family == socket.AF_INET:  # the kernel fills in the ICMPv6 checksum itself
        packet = header[:2] + struct.pack("!H", _checksum(packet)) + header[4:] + payload
    with sock:
        sock.setblocking(False)
        try:
            sock.connect((address, 0))
            sock.send(packet)
            with anyio.fail_after(timeout):
                while True:
                    await anyio.wait_readable(sock)
                    data = sock.recv(2048)
                    if raw and family == socket.AF_INET:
                        data = data[(data[0] & 0x0F) * 4 :]  # strip the IP header
                    if len(data) >= 8 and data[0] == _ECHO_REPLY[family] and data[8:] == payload:
                        return ""
        except TimeoutError:
            return "no echo reply (timeout)"
        except OSError as exc:
            return f"ping failed: {exc.strerror or exc}"
