"""ClusterDNS against dnspython: the transitions the agent relies on, on loopback."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from tests.harness.clusterdns import ClusterDNS

SVC = "headless-svc.default.svc.cluster.local."


def ask(dnsd: ClusterDNS, name: str, rdtype: str = "A") -> dns.message.Message:
    query = dns.message.make_query(name, rdtype)
    return dns.query.udp(query, dnsd.address, port=dnsd.port, timeout=2.0)


def addrs(reply: dns.message.Message) -> set[str]:
    return {rd.to_text() for rrset in reply.answer for rd in rrset}


@pytest.fixture
def dnsd(tmp_path: Path) -> Iterator[ClusterDNS]:
    with ClusterDNS(tmp_path / "dns") as server:
        yield server


@pytest.mark.timeout(30)
def test_add_change_remove(dnsd: ClusterDNS) -> None:
    name = f"example-job-0.{SVC}"
    assert ask(dnsd, name).rcode() == dns.rcode.NXDOMAIN
    dnsd.set_a(name, ["198.18.1.1"])
    reply = ask(dnsd, name)
    assert reply.rcode() == dns.rcode.NOERROR
    assert addrs(reply) == {"198.18.1.1"}
    assert reply.answer[0].ttl == 0
    dnsd.set_a(name, ["198.18.1.2", "198.18.1.3"])
    assert addrs(ask(dnsd, name)) == {"198.18.1.2", "198.18.1.3"}
    dnsd.remove(name)
    gone = ask(dnsd, name)
    assert gone.rcode() == dns.rcode.NXDOMAIN
    # CoreDNS puts the zone's SOA in an NXDOMAIN answer; negative caches key on it.
    assert gone.authority and gone.authority[0].rdtype == dns.rdatatype.SOA


@pytest.mark.timeout(30)
def test_srv_and_tcp(dnsd: ClusterDNS) -> None:
    srv = f"_peer-agent._tcp.{SVC}"
    targets = [(f"example-job-{i}.{SVC}", 29300) for i in range(3)]
    dnsd.set_srv(srv, targets)
    reply = dns.query.tcp(
        dns.message.make_query(srv, "SRV"), dnsd.address, port=dnsd.port, timeout=2.0
    )
    got = {(rd.target.to_text(), rd.port, rd.priority) for rrset in reply.answer for rd in rrset}
    assert got == {(t, 29300, 0) for t, _ in targets}
    dnsd.remove(srv)
    assert ask(dnsd, srv, "SRV").rcode() == dns.rcode.NXDOMAIN


@pytest.mark.timeout(30)
def test_outside_zone_is_refused_and_queries_counted(dnsd: ClusterDNS) -> None:
    before = dnsd.queries()
    assert ask(dnsd, "example.com.").rcode() == dns.rcode.REFUSED
    assert ask(dnsd, f"nobody.{SVC}").rcode() == dns.rcode.NXDOMAIN
    assert dnsd.queries() == before + 2
    with pytest.raises(ValueError):
        dnsd.set_a("example.com", ["198.18.1.1"])


@pytest.mark.timeout(30)
def test_many_names_at_once(dnsd: ClusterDNS) -> None:
    names = {
        f"example-job-{i}.{SVC}": [f"A 198.18.{1 + i // 250}.{1 + i % 250}"] for i in range(256)
    }
    dnsd.set_many(names)
    assert addrs(ask(dnsd, f"example-job-255.{SVC}")) == {"198.18.2.6"}
    dnsd.remove_many(list(names))
    assert ask(dnsd, f"example-job-0.{SVC}").rcode() == dns.rcode.NXDOMAIN


@pytest.mark.timeout(30)
def test_negative_cache_in_front(tmp_path: Path) -> None:
    name = f"example-job-0.{SVC}"
    with ClusterDNS(tmp_path / "dns", negative_ttl=2) as dnsd:
        front, back = dnsd.queries(), dnsd.backend_queries()
        assert ask(dnsd, name).rcode() == dns.rcode.NXDOMAIN
        dnsd.set_a(name, ["198.18.1.1"])
        # Published, but the cached NXDOMAIN is still served, as CoreDNS' cache would.
        assert ask(dnsd, name).rcode() == dns.rcode.NXDOMAIN
        assert (dnsd.queries() - front, dnsd.backend_queries() - back) == (2, 1)
        deadline = time.monotonic() + 5
        while ask(dnsd, name).rcode() != dns.rcode.NOERROR:
            assert time.monotonic() < deadline, "negative entry outlived its TTL"
            time.sleep(0.1)
        dnsd.remove(name)
        dnsd.flush_cache()
        assert ask(dnsd, name).rcode() == dns.rcode.NXDOMAIN


@pytest.mark.timeout(30)
def test_stop_kills_and_restart_is_clean(tmp_path: Path) -> None:
    dnsd = ClusterDNS(tmp_path / "dns")
    dnsd.start()
    port = dnsd.port
    dnsd.stop()
    # stop() waited for the process: the port is released at once.
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port)):
        pass
    dnsd.start()
    assert ask(dnsd, SVC).rcode() == dns.rcode.NXDOMAIN
    dnsd.stop()


@pytest.mark.timeout(30)
def test_many_tcp_clients_at_once_keep_their_connections(dnsd: ClusterDNS) -> None:
    """A 256-pod Service's answer needs TCP, and its pods ask at once: CoreDNS serves them all
    and keeps their connections. unbound's default 10 TCP buffers, with its idle timeout cut to
    nothing once they are in use, closed connections of pods that had not asked yet."""
    name = f"example-job-0.{SVC}"
    dnsd.set_a(name, ["198.18.1.1"])
    query = dns.message.make_query(name, "A")
    clients = [socket.create_connection((dnsd.address, dnsd.port), timeout=2.0) for _ in range(64)]
    try:
        for _ in range(2):  # the second round finds each connection still open
            replies = [dns.query.tcp(query, dnsd.address, port=dnsd.port, sock=c) for c in clients]
            assert all(addrs(reply) == {"198.18.1.1"} for reply in replies)
    finally:
        for client in clients:
            client.close()
