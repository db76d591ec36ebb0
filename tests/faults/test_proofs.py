"""The handshake's proofs from outside: a recorded hello or proof replayed or reflected is refused,
no server proof comes before the client's, and an unauthenticated prober gets nothing to guess the
token against offline.
"""

from __future__ import annotations

import contextlib
import socket

import anyio
import anyio.abc
import pytest

from agent.io.channel import Channel, HandshakeFailed, client_handshake
from agent.io.runner import identity_of
from agent.protocol.handshake import proof_for
from agent.protocol.wire import Hello, Identity, Proof, Refuse, Role, decode, encode
from tests.faults.conftest import (
    JOB,
    AgentProcess,
    Job,
    agent_argv,
)
from tests.faults.rawpeer import Outcomes, RawClient, bare_server
from tests.support.faultdns import FaultDNS

pytestmark = [pytest.mark.usefixtures("fast_progress"), pytest.mark.timeout(30)]
TOKEN = b"correct horse battery staple"
SERVER = Identity(JOB, "uid-1", 0, 3, 29300)
CLIENT = Identity(JOB, "uid-1", 1, 3, 29300)


# --- replayed and reflected proofs, at the channel level ------------------------------------------
@pytest.mark.asyncio
async def test_a_recorded_hello_and_proof_replayed_on_a_new_connection_are_refused() -> None:
    """An eavesdropper records a pod's hello and token proof and replays both on a new
    connection: the server's fresh nonce makes the old proof worthless: refused."""
    outcomes = Outcomes()

    async with bare_server(TOKEN, outcomes) as where:
        # The genuine session, recorded byte for byte.
        real = await RawClient.open(where)
        hello_line = encode(Hello(CLIENT, Role.PROBE, "c0ffee" * 4, proves=True))
        await real.send(hello_line)
        reply = await real.receive()
        assert isinstance(reply, Hello)
        proof = proof_for(
            TOKEN, role="client", their_nonce=reply.nonce, my_nonce="c0ffee" * 4, me=CLIENT
        )
        proof_line = encode(Proof(proof))
        await real.send(proof_line)
        await real.aclose()
        # The replay.
        replay = await RawClient.open(where)
        await replay.send(hello_line)
        second = await replay.receive()
        assert isinstance(second, Hello) and second.nonce != reply.nonce
        await replay.send(proof_line)
        answer = await replay.receive()
        await replay.aclose()
        first, second_outcome = await outcomes.at_least(2)
    assert isinstance(first, Hello)  # the genuine one passed
    assert (
        isinstance(second_outcome, HandshakeFailed) and "bad token proof" in second_outcome.reason
    )
    assert answer == Refuse("bad token")


@pytest.mark.asyncio
async def test_no_server_proof_comes_before_the_clients_and_none_passes_as_a_clients() -> None:
    """A client without the token gets no server proof at all: the reply hello carries none,
    and its own wrong proof is refused with nothing else. A server proof a genuine client got
    cannot be reflected as a client's proof on a connection of its own: proofs name their
    role."""
    outcomes = Outcomes()

    async with bare_server(TOKEN, outcomes) as where:
        # 1. without the token: nothing token-derived comes back
        a = await RawClient.open(where)
        await a.send(encode(Hello(SERVER, Role.PROBE, "11" * 16, proves=True)))
        reply = await a.receive()
        assert isinstance(reply, Hello) and reply.proves
        await a.send(encode(Proof("00" * 32)))
        assert await a.receive() == Refuse("bad token")
        assert await a.receive() is None  # closed: no server proof
        await a.aclose()
        # 2. a genuine client (this test has the token) gets the server's proof ...
        genuine = await RawClient.open(where)
        await genuine.send(encode(Hello(SERVER, Role.PROBE, "22" * 16, proves=True)))
        reply1 = await genuine.receive()
        assert isinstance(reply1, Hello)
        proof = proof_for(
            TOKEN, role="client", their_nonce=reply1.nonce, my_nonce="22" * 16, me=SERVER
        )
        await genuine.send(encode(Proof(proof)))
        server_proof = await genuine.receive()
        assert isinstance(server_proof, Proof)
        await genuine.aclose()
        # ... which an attacker reflects as a client's proof, its nonce the server's
        attacker = await RawClient.open(where)
        await attacker.send(encode(Hello(SERVER, Role.PROBE, reply1.nonce, proves=True)))
        assert isinstance(await attacker.receive(), Hello)
        await attacker.send(encode(server_proof))
        assert await attacker.receive() == Refuse("bad token")
        await attacker.aclose()
        results = await outcomes.at_least(3)
    assert [type(o) for o in results] == [HandshakeFailed, Hello, HandshakeFailed], results


@pytest.mark.asyncio
async def test_a_recorded_server_reply_replayed_to_a_client_is_refused() -> None:
    """A fake server replays a genuine server's recorded reply and token proof to a new client:
    the proof covers the old client nonce, so the client refuses it."""
    recorded: list[bytes] = []

    outcomes = Outcomes()
    async with bare_server(TOKEN, outcomes) as where:
        raw = await RawClient.open(where)
        await raw.send(encode(Hello(CLIENT, Role.PROBE, "33" * 16, proves=True)))
        reply = await raw.receive()
        assert isinstance(reply, Hello)
        recorded.append(encode(reply))
        mine = proof_for(
            TOKEN, role="client", their_nonce=reply.nonce, my_nonce="33" * 16, me=CLIENT
        )
        await raw.send(encode(Proof(mine)))
        server_proof = await raw.receive()
        assert isinstance(server_proof, Proof)
        recorded.append(encode(server_proof))
        await raw.aclose()

    fake = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)

    async def replay(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            channel = Channel(stream)
            await channel.receive(3)
            await stream.send(recorded[0])
            await channel.receive(3)  # the client's proof, for this fake's old nonce
            await stream.send(recorded[1])
            with anyio.move_on_after(3):
                await stream.receive()

    async with fake, anyio.create_task_group() as tg:
        tg.start_soon(fake.serve, replay)
        port = fake.extra(anyio.abc.SocketAttribute.local_port)
        channel = Channel(await anyio.connect_tcp("127.0.0.1", port))
        try:
            with pytest.raises(HandshakeFailed) as error:
                await client_handshake(
                    channel, me=CLIENT, role=Role.PROBE, token=TOKEN, expected_index=0
                )
        finally:
            await channel.aclose()
            tg.cancel_scope.cancel()
    assert "token proof is wrong" in error.value.reason


# --- an offline guessing oracle -------------------------------------------------------------------
WEAK = "sunshine"
#: a small dictionary, the weak token among them (the review's fell in 246 guesses)
_WORDS = """123456 password 12345678 qwerty abc123 monkey letmein dragon 111111 baseball iloveyou
trustno1 1234567 master hello freedom whatever qazwsx shadow michael football jennifer hunter"""
DICTIONARY = [*_WORDS.split(), WEAK]


def _token_derived(candidate: bytes, sent: str, nonces: list[str], me: Identity) -> bool:
    """Whether any proof ``candidate`` would make over these nonces, in any role and order,
    is in what the agent ``sent``: what an offline guess would be checked against."""
    for role in ("server", "client"):
        for a in nonces:
            for b in nonces:
                if proof_for(candidate, role=role, their_nonce=a, my_nonce=b, me=me) in sent:
                    return True
    return False


def test_an_unauthenticated_prober_gets_nothing_to_guess_the_token_against(
    fault_dns: FaultDNS, processes: list[AgentProcess]
) -> None:
    """A client anywhere, without the token, says a hello to a pod with a weak token and reads
    all the pod sends before the client has proved anything. Nothing in it depends on the
    token: no guess from a dictionary can be checked against it offline (the reply hello used
    to carry the server's proof, and the weak token fell to the dictionary)."""
    job = Job(fault_dns, 2)
    job.publish(0)
    argv = agent_argv(job, "wait", 0, "--timeout", "20s")
    agent = AgentProcess(argv, env={"PEER_AGENT_TOKEN": WEAK})
    processes.append(agent)
    agent.wait_line("topology")  # logged once its port listens
    me = identity_of(job.config(1))
    nonce = "c1" * 16
    sent = b""
    with socket.create_connection((job.address(0), job.port), timeout=5) as conn:
        conn.sendall(encode(Hello(me, Role.PROBE, nonce)))
        conn.settimeout(1)  # all the agent sends unprompted: its reply, then silence
        with contextlib.suppress(TimeoutError):
            while chunk := conn.recv(4096):
                sent += chunk
    reply = decode(sent.split(b"\n", 1)[0] + b"\n")
    assert isinstance(reply, Hello) and reply.identity.index == 0
    text = sent.decode()
    nonces = [nonce, reply.nonce]
    found = [w for w in DICTIONARY if _token_derived(w.encode(), text, nonces, reply.identity)]
    assert found == [], f"the token {found} can be guessed offline from {text!r}"
    agent.stop()
