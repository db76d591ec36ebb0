"""One DNS question to cluster DNS from inside a namespace, as a pod or the node asks it."""

from __future__ import annotations

import socket
from dataclasses import dataclass

import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rcode

from tests.harness.nsutil import family_of, netns_socket


@dataclass(frozen=True)
class DNSAnswer:
    rcode: str  # "NOERROR", "NXDOMAIN", ... or "TIMEOUT"
    values: frozenset[str]  # rdata as text: addresses, or "prio weight port target." for SRV

    @property
    def addresses(self) -> frozenset[str]:
        return self.values


def query(
    netns: str | None, server: str, port: int, name: str, rdtype: str = "A", timeout: float = 1.0
) -> DNSAnswer:
    qname = name if name.endswith(".") else name + "."
    message = dns.message.make_query(qname, rdtype, use_edns=0, payload=1232)
    with netns_socket(netns, family_of(server), socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)  # dnspython waits with select on a caller's socket
        try:
            reply = dns.query.udp(message, server, port=port, timeout=timeout, sock=sock)
        except dns.exception.Timeout:
            return DNSAnswer("TIMEOUT", frozenset())
    if reply.flags & dns.flags.TC:  # a Service with a few hundred pods: retry over TCP
        with netns_socket(netns, family_of(server), socket.SOCK_STREAM) as tcp:
            tcp.settimeout(timeout)
            tcp.connect((server, port))
            tcp.setblocking(False)
            reply = dns.query.tcp(message, server, port=port, timeout=timeout, sock=tcp)
    values = frozenset(rd.to_text() for rrset in reply.answer for rd in rrset)
    return DNSAnswer(dns.rcode.to_text(reply.rcode()), values)
