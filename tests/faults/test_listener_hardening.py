"""The agent's port faces whatever can reach it: slow clients, garbage, resets and floods cost only
their own connections, and the barrier still passes.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Coroutine
from typing import Any

import anyio
import anyio.abc
import pytest

from agent.config.model import Probe, ProbeKind
from agent.core.inputs import Reached
from agent.core.timing import DEFAULT_TIMING
from agent.io.probes import probe
from agent.io.runner import identity_of
from agent.protocol.wire import Arrive, Identity, encode
from tests.faults.conftest import (
    Job,
    Record,
    all_done,
    released,
)
from tests.faults.listening import (
    Tally,
    answers_a_peer,
    connect_to,
    hello,
    listening,
    reset,
    until_closed,
)
from tests.support.faultdns import FaultDNS

pytestmark = pytest.mark.usefixtures("fast_progress")


# --- slow clients ---------------------------------------------------------------------------------
@pytest.mark.timeout(30)
@pytest.mark.asyncio
async def test_a_client_that_stalls_mid_hello_is_dropped_at_the_handshake_deadline(
    fault_dns: FaultDNS, record: Record
) -> None:
    """Clients that connect and say nothing, send half a hello, drip a byte every 0.4 s, or (with
    a token) never send their proof are each dropped about the handshake timeout (5 s) after they
    connect; meanwhile a real peer's probe is answered at once."""
    job = Job(fault_dns, 2)
    secured = Job(fault_dns, 2)
    job.publish(0)
    secured.publish(0)
    me = identity_of(job.config(1))
    closed: dict[str, float] = {}
    connected, all_closed = Tally(4), Tally(4)

    async def silent() -> None:
        async with await connect_to(job, 0) as s:
            connected.mark()
            closed["silent"] = (await until_closed(s))[0]
            all_closed.mark()

    async def half_hello() -> None:
        async with await connect_to(job, 0) as s:
            await s.send(hello(me)[:40])
            connected.mark()
            closed["half hello"] = (await until_closed(s))[0]
            all_closed.mark()

    async def drip() -> None:
        async with await connect_to(job, 0) as s:
            started = time.monotonic()
            async with anyio.create_task_group() as both:

                async def send_slowly() -> None:
                    for byte in hello(me)[:-1]:
                        await s.send(bytes([byte]))
                        await anyio.sleep(0.4)  # the drip's pace

                both.start_soon(send_slowly)
                connected.mark()
                await until_closed(s)
                closed["drip"] = time.monotonic() - started
                all_closed.mark()
                both.cancel_scope.cancel()

    async def no_proof() -> None:
        async with await connect_to(secured, 0) as s:
            started = time.monotonic()
            await s.send(hello(identity_of(secured.config(1, token="t0ken")), proves=True))
            connected.mark()
            _, got = await until_closed(s)
            assert b'"t":"hello"' in got  # the reply came, then nothing more was accepted
            closed["hello, no proof"] = time.monotonic() - started
            all_closed.mark()

    async with anyio.create_task_group() as tg:
        pods = [job.start(tg, 0), secured.start(tg, 0, token="t0ken")]
        for pod in pods:
            await listening(pod)
        for client in (silent, half_hello, drip, no_proof):
            tg.start_soon(client)
        await connected.wait()  # the slow clients are in
        started = time.monotonic()
        result = await probe(Probe(ProbeKind.TCP), job.address(0), me=me, target=0, token=None)
        answered = time.monotonic() - started
        assert isinstance(result, Reached), result
        await all_closed.wait()
        assert not any(p.done.is_set() for p in pods), [p.error for p in pods]
        tg.cancel_scope.cancel()
    assert answered < 0.5
    for what, seconds in closed.items():
        deadline = DEFAULT_TIMING.handshake_timeout
        assert deadline - 0.6 <= seconds <= deadline + 1.0, (what, seconds)
    record(**{k.replace(" ", "_").replace(",", "") + "_s": round(v, 2) for k, v in closed.items()})
    record(probe_answered_s=round(answered, 3))


# --- bad input: one connection at a time ----------------------------------------------------------
STRANGER = Identity("another-job", "", 0, 1, 29300)
JUNK: dict[str, bytes] = {
    "garbage line": b"hello? is this thing on\n",
    "binary": bytes(range(256)) * 4,
    "http request": b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
    "oversized line": b"x" * 100_000,
    "oversized hello": hello(STRANGER).replace(b'"ab', b'"' + b"ab" * 2000),
    "deeply nested JSON": b"[" * 2000 + b"]" * 2000 + b"\n",
    "a message that is not a hello": encode(Arrive()),
    "another job's hello": hello(STRANGER),
    "unknown protocol version": b'{"v":1,"t":"hello"}\n',
}


@pytest.mark.timeout(30)
@pytest.mark.parametrize("kind", list(JUNK))
@pytest.mark.asyncio
async def test_bad_input_is_closed_at_once_and_costs_nothing_else(
    fault_dns: FaultDNS, record: Record, kind: str
) -> None:
    """Twenty connections of this junk to each pod: the agent closes each well before the
    handshake deadline, logs nothing for it, and the barrier passes."""
    job = Job(fault_dns, 2)
    job.publish(0)
    payload = JUNK[kind]
    times: list[float] = []

    async def one(i: int) -> None:
        async with await connect_to(job, i) as s:
            with contextlib.suppress(anyio.BrokenResourceError, OSError):
                await s.send(payload)  # may be closed while we still send: that is the point
            times.append((await until_closed(s))[0])

    async with anyio.create_task_group() as tg:
        pods = [job.start(tg, i) for i in range(2)]
        for pod in pods:
            await listening(pod)
        async with anyio.create_task_group() as clients:
            for _ in range(20):
                for i in range(2):
                    clients.start_soon(one, i)
        job.publish(1)
        await all_done(pods)
    assert released(pods), [p.error for p in pods]
    # ~10 ms; slack for a busy machine
    assert max(times) < DEFAULT_TIMING.handshake_timeout / 2, max(times)
    assert not any(e.kind == "refused" for p in pods for e in p.events)
    record(tries=len(times), slowest_close_s=round(max(times), 3))


# --- connections that end badly -------------------------------------------------------------------
async def _half_closed_at_once(job: Job, target: int) -> None:
    async with await connect_to(job, target) as s:
        await s.send_eof()
        await until_closed(s)


async def _half_closed_after_hello(job: Job, target: int) -> None:
    async with await connect_to(job, target) as s:
        await s.send(hello(identity_of(job.config(1 - target))))
        await s.send_eof()
        # answered if accepted before its FIN came, else closed unread (agent.io.listener):
        # either way, only this connection
        _, got = await until_closed(s)
        assert got == b"" or b'"role":"reply"' in got


async def _reset_at_once(job: Job, target: int) -> None:
    await reset(await connect_to(job, target))


async def _reset_after_probe_hello(job: Job, target: int) -> None:
    s = await connect_to(job, target)
    await s.send(hello(identity_of(job.config(1 - target))))
    await reset(s)


ENDINGS: dict[str, Callable[[Job, int], Coroutine[Any, Any, None]]] = {
    "half-closed before a byte": _half_closed_at_once,
    "half-closed after a hello": _half_closed_after_hello,
    "reset before a byte": _reset_at_once,
    "reset right after a probe's hello": _reset_after_probe_hello,
}


@pytest.mark.timeout(30)
@pytest.mark.parametrize("kind", list(ENDINGS))
@pytest.mark.asyncio
async def test_connections_that_end_badly_cost_nothing_else(
    fault_dns: FaultDNS, record: Record, kind: str
) -> None:
    """Fifty connections to each pod end this way: no agent fails, and the barrier passes."""
    job = Job(fault_dns, 2)
    job.publish(0)

    async with anyio.create_task_group() as tg:
        pods = [job.start(tg, i) for i in range(2)]
        for pod in pods:
            await listening(pod)
        async with anyio.create_task_group() as clients:
            for _ in range(50):
                for i in range(2):
                    clients.start_soon(ENDINGS[kind], job, i)
        for i in range(2):  # what arrived before is handled: each still answers a peer
            await answers_a_peer(job, i)
        assert not any(p.done.is_set() for p in pods), [p.error for p in pods]
        job.publish(1)
        await all_done(pods)
    assert released(pods), [p.error for p in pods]
    record(tries=100)
