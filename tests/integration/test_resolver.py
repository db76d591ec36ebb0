"""The DNS adapter: answers read off the wire as users' clusters send them, failures named.

A table of answers (built with dnspython, as a server would write them) read by the adapter's
parser, then lookups against real DNS servers on loopback: several nameservers, stray
datagrams, large answers moving to TCP and answers cut short even there.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable, Iterator

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from agent.io.dnswire import Failed as _Failed
from agent.io.dnswire import NoData as _NoData
from agent.io.dnswire import NXDomain as _NXDomain
from agent.io.dnswire import _query_wire
from agent.io.dnswire import read as _read
from agent.io.resolver import Resolution, Resolver
from tests.support.dnsserver import LoopbackDNSServer
from tests.support.faultdns import FaultDNS

pytestmark = pytest.mark.timeout(20)

NAME = "headless-svc.default.svc.cluster.local."
A, AAAA = dns.rdatatype.A, dns.rdatatype.AAAA
Wire = tuple[bytes, bytes, int, dns.rdatatype.RdataType]  # answer, question, query id, type


def _query(rdtype: dns.rdatatype.RdataType = A) -> tuple[dns.message.QueryMessage, bytes]:
    query = dns.message.make_query(NAME, rdtype, use_edns=0, payload=1232)
    name_size = len(dns.name.from_text(NAME).to_wire() or b"")
    return query, (query.to_wire() or b"")[12 : 12 + name_size + 4]


def _answer(
    *rrsets: tuple[str, str, list[str]],
    rcode: dns.rcode.Rcode = dns.rcode.NOERROR,
    tc: bool = False,
    rdtype: dns.rdatatype.RdataType = A,
) -> Wire:
    query, question = _query(rdtype)
    reply = dns.message.make_response(query)
    reply.set_rcode(rcode)
    if tc:
        reply.flags |= dns.flags.TC
    for owner, kind, data in rrsets:
        reply.answer.append(dns.rrset.from_text_list(owner, 30, "IN", kind, data))
    return reply.to_wire() or b"", question, query.id, rdtype


def _uncompressed(wire: bytes) -> bytes:
    """The same one-record answer with its owner name written out instead of a pointer."""
    pointer = wire.index(b"\xc0\x0c")
    return wire[:pointer] + (dns.name.from_text(NAME).to_wire() or b"") + wire[pointer + 2 :]


def _owner_in_full(answer: Wire) -> Wire:
    wire, question, query_id, rdtype = answer
    return _uncompressed(wire), question, query_id, rdtype


PODS = [f"198.18.0.{i}" for i in range(1, 40)]
READS: list[tuple[str, Callable[[], Wire], object]] = [
    ("many A records", lambda: _answer((NAME, "A", PODS)), tuple(PODS)),
    (
        "AAAA records",
        lambda: _answer((NAME, "AAAA", ["fd00::1", "fd00::2"]), rdtype=AAAA),
        ("fd00::1", "fd00::2"),
    ),
    (
        "a CNAME chain is followed",
        lambda: _answer((NAME, "CNAME", ["pods.example."]), ("pods.example.", "A", ["198.18.1.1"])),
        ("198.18.1.1",),
    ),
    (
        "an owner written out in full",
        lambda: _owner_in_full(_answer((NAME, "A", ["198.18.0.9"]))),
        ("198.18.0.9",),
    ),
    ("NXDOMAIN", lambda: _answer(rcode=dns.rcode.NXDOMAIN), _NXDomain),
    ("SERVFAIL is this server's failure", lambda: _answer(rcode=dns.rcode.SERVFAIL), "SERVFAIL"),
    ("REFUSED", lambda: _answer(rcode=dns.rcode.REFUSED), "REFUSED"),
    ("no record of the type", lambda: _answer(), _NoData),
    ("a CNAME to nothing", lambda: _answer((NAME, "CNAME", ["gone.example."])), _NoData),
    ("garbage after the header", lambda: (b"\x00" * 12 + b"\xff" * 20, b"", 0, A), "DNS error"),
    ("a short datagram", lambda: (b"\x00\x01", b"", 1, A), "DNS error: short answer"),
]


@pytest.mark.parametrize(("answer", "expected"), [r[1:] for r in READS], ids=[r[0] for r in READS])
def test_reading_an_answer(answer: Callable[[], Wire], expected: object) -> None:
    wire, question, query_id, rdtype = answer()
    if isinstance(expected, type):
        with pytest.raises(expected):
            _read(wire, question, query_id, rdtype)
    elif isinstance(expected, str):
        with pytest.raises(_Failed, match=expected):
            _read(wire, question, query_id, rdtype)
    else:
        assert isinstance(expected, tuple)
        assert sorted(_read(wire, question, query_id, rdtype).addresses) == sorted(expected)


def test_an_answer_to_another_query_id_is_not_taken() -> None:
    wire, question, query_id, _ = _answer((NAME, "A", ["198.18.0.1"]))
    with pytest.raises(_Failed, match="another query"):
        _read(wire, question, query_id ^ 1, A)


def test_an_answer_cut_short_says_so_and_keeps_what_it_has() -> None:
    wire, question, query_id, _ = _answer((NAME, "A", PODS[:3]), tc=True)
    reply = _read(wire, question, query_id, A)
    assert reply.truncated and sorted(reply.addresses) == PODS[:3]


# --- live lookups on loopback ------------------------------------------------------------------
@pytest.fixture
def fault_dns() -> Iterator[FaultDNS]:
    with FaultDNS({NAME: PODS}) as server:
        yield server


def _at(server: LoopbackDNSServer) -> tuple[str, int]:
    return server.address, server.port


async def _resolve(*servers: LoopbackDNSServer) -> Resolution:
    return await Resolver([_at(s) for s in servers], attempt_timeout=1.0).addresses(NAME)


@pytest.mark.asyncio
async def test_a_failing_first_nameserver_hands_over_to_the_next(fault_dns: FaultDNS) -> None:
    with FaultDNS({NAME: ["198.18.9.9"]}) as broken:
        broken.fault("servfail")
        assert sorted((await _resolve(broken, fault_dns)).addresses) == sorted(PODS)
        assert broken.outcomes(NAME) == ["SERVFAIL"]


@pytest.mark.asyncio
async def test_when_every_nameserver_fails_each_failure_is_named(fault_dns: FaultDNS) -> None:
    with FaultDNS() as silent:
        silent.fault("silence")
        fault_dns.fault("refused")
        failure = (await _resolve(silent, fault_dns)).failure
        assert failure is not None and failure.reason == "DNS timeout, REFUSED"


@pytest.mark.asyncio
async def test_a_large_answer_is_fetched_over_tcp_then_asked_there_first(
    fault_dns: FaultDNS,
) -> None:
    many = [f"198.18.{i // 250}.{i % 250 + 1}" for i in range(300)]
    fault_dns.set(NAME, *many)
    resolver = Resolver([_at(fault_dns)])
    answers = [await resolver.addresses(NAME) for _ in range(3)]
    assert all(sorted(a.addresses) == sorted(many) and not a.truncated for a in answers)
    # the first UDP answer is cut (TC), so this name is asked over TCP from then on
    assert [q.transport for q in fault_dns.log] == ["udp", "tcp", "tcp", "tcp"]


class _ForgerFirst(FaultDNS):
    """Sends a forged datagram (another id, another address) before each real UDP answer."""

    def _send_udp(self, wire: bytes, peer: tuple[str, int]) -> None:
        forged = struct.pack("!H", struct.unpack_from("!H", wire)[0] ^ 0xFFFF) + wire[2:]
        super()._send_udp(forged.replace(socket.inet_aton(PODS[0]), bytes(4)), peer)
        super()._send_udp(wire, peer)


@pytest.mark.asyncio
async def test_a_datagram_with_another_query_id_is_ignored() -> None:
    with _ForgerFirst({NAME: PODS[:1]}) as server:
        assert await _resolve(server) == Resolution((PODS[0],))


@pytest.mark.parametrize("rdtype", [A, AAAA])
def test_the_query_is_what_dnspython_would_send(rdtype: dns.rdatatype.RdataType) -> None:
    expected = dns.message.make_query(NAME, rdtype, use_edns=0, payload=1232)
    expected.id = 0
    wire, question = _query_wire(NAME, rdtype)
    assert wire == expected.to_wire()
    assert question == _query(rdtype)[1]


class _ResetOverTCP(FaultDNS):
    """Sends every UDP answer cut (TC) and resets every TCP connection once the query is read."""

    def _serve_tcp_conn(self, conn: socket.socket) -> None:
        with conn:
            conn.recv(512)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


@pytest.mark.asyncio
async def test_a_tcp_answer_reset_half_way_is_a_named_failure_not_a_crash() -> None:
    with _ResetOverTCP({NAME: PODS}) as server:
        server.fault("truncate")
        failure = (await _resolve(server)).failure
        assert failure is not None and failure.reason.startswith("DNS error: ")


@pytest.mark.asyncio
async def test_an_ipv6_only_cluster_is_asked_for_aaaa_first_once_it_answered_so() -> None:
    """Kubernetes publishes only AAAA in an IPv6-only cluster: after the first name, one query."""
    other = "other." + NAME
    with FaultDNS({NAME: ["fd00::1", "fd00::2"], other: ["fd00::3"]}) as server:
        resolver = Resolver([_at(server)])
        answers = [await resolver.addresses(NAME), await resolver.addresses(other)]
        server.set(other, "198.18.0.3")  # a name with A alone: asked again as A
        answers += [await resolver.addresses(other), await resolver.addresses(other)]
    assert [tuple(sorted(a.addresses)) for a in answers] == [
        ("fd00::1", "fd00::2"),
        ("fd00::3",),
        ("198.18.0.3",),
        ("198.18.0.3",),
    ]
    assert [q.rdtype for q in server.log] == ["A", "AAAA", "AAAA", "AAAA", "A", "A"]
