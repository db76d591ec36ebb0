"""Sidecar health endpoints over HTTP/1.1 (h11 parses; no hand-rolled HTTP).

``/livez`` is 200 while the agent runs; ``/readyz`` is 200 once the barrier has been released,
which is what a native sidecar's startupProbe waits on before the main container starts.
GET and HEAD are answered (HEAD without a body: sending one raised out of h11 and ended the
sidecar); any other method gets 405, a request h11 cannot parse 400 or 431 when it still can.
A sidecar also answers ``POST /barrier/NAME`` (named barriers, :mod:`agent.commands.named`),
which waits.
One request per connection, then it is closed. Whatever a client sends costs only its own
connection: the port is served by ``listener.serve`` under the supervisor.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
from collections.abc import Awaitable, Callable

import anyio
import anyio.abc
import h11

from agent.io import listener
from agent.io.supervisor import Supervisor

__all__ = ["serve_health"]

REQUEST_TIMEOUT = 5.0
MAX_REQUEST = 8192
MAX_CLIENTS = 32
#: after the answer, what the client still sends is read and dropped (see ``_linger``)
LINGER, MAX_LINGER = 1.0, 65536
_METHODS = (b"GET", b"HEAD")
#: named barriers (agent.commands.named): POST /barrier/NAME
PREFIX = b"/barrier/"
BarrierHandler = Callable[[str, str, anyio.abc.ByteStream], Awaitable[tuple[int, bytes]]]


def _route(request: h11.Request, ready: Callable[[], bool]) -> tuple[int, bytes]:
    if request.method not in _METHODS:
        return 405, b"method not allowed\n"
    path = request.target.split(b"?", 1)[0]
    if path == b"/livez":
        return 200, b"ok\n"
    if path == b"/readyz":
        return (200, b"released\n") if ready() else (503, b"waiting\n")
    return 404, b"not found\n"


def _response(conn: h11.Connection, status: int, body: bytes, *, head: bool) -> bytes:
    headers = [
        ("content-type", "text/plain"),
        ("content-length", str(len(body))),
        ("connection", "close"),
    ]
    if status == 405:
        headers.append(("allow", "GET, HEAD"))
    out = conn.send(h11.Response(status_code=status, headers=headers)) or b""
    if not head:  # a HEAD response says the length of the body it does not carry
        out += conn.send(h11.Data(data=body)) or b""
    return out + (conn.send(h11.EndOfMessage()) or b"")


async def _receive(stream: anyio.abc.ByteStream) -> bytes:
    try:
        return await stream.receive(4096)
    except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
        return b""  # h11 sees the connection closed


async def _answer(
    stream: anyio.abc.ByteStream, ready: Callable[[], bool], barrier: BarrierHandler | None
) -> None:
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_REQUEST)
    event: object = None
    bad: h11.RemoteProtocolError | None = None
    with anyio.move_on_after(REQUEST_TIMEOUT) as reading:
        try:
            while (event := conn.next_event()) is h11.NEED_DATA:
                conn.receive_data(await _receive(stream))
        except h11.RemoteProtocolError as exc:
            if conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
                return
            bad = exc
    if reading.cancelled_caught:
        return
    if bad is not None:
        out = _response(conn, bad.error_status_hint, b"bad request\n", head=False)
    elif not isinstance(event, h11.Request):  # closed before a request
        return
    elif barrier is not None and event.method == b"POST" and event.target.startswith(PREFIX):
        # Waits as long as the named barrier does (its own deadline), not REQUEST_TIMEOUT.
        name, _, query = event.target[len(PREFIX) :].partition(b"?")
        status, body = await barrier(name.decode("latin-1"), query.decode("latin-1"), stream)
        out = _response(conn, status, body, head=False)
    else:
        status, body = _route(event, ready)
        out = _response(conn, status, body, head=event.method == b"HEAD")
    with anyio.move_on_after(REQUEST_TIMEOUT):
        await stream.send(out)
        await _linger(stream)


async def _linger(stream: anyio.abc.ByteStream) -> None:
    """Closing with bytes unread (a body not wanted, the rest of an oversize request) sends a
    reset, which can destroy the answer before the client has read it: say we are done, and
    read what still comes until the client closes (bounded in time and bytes)."""
    await stream.send_eof()
    drained = 0
    with anyio.move_on_after(LINGER):
        while drained < MAX_LINGER and (data := await _receive(stream)):
            drained += len(data)


async def _serve(
    stream: anyio.abc.ByteStream,
    ready: Callable[[], bool],
    barrier: BarrierHandler | None = None,
) -> None:
    async with stream:
        # A client that goes away mid-answer costs only its own connection.
        with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            await _answer(stream, ready, barrier)


async def serve_health(
    host: str | None,
    port: int,
    ready: Callable[[], bool],
    *,
    supervisor: Supervisor,
    barrier: BarrierHandler | None = None,
    task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until cancelled; OSError when the port cannot be bound. With ``barrier``, also
    ``POST /barrier/NAME[?timeout=D]``, answered by ``barrier(NAME, query, stream)``."""
    sock = listener.listen(host, port)
    # Kubelet probes one request at a time. A bound keeps a flood of idle connections from
    # using up the descriptors (EMFILE from accept() ended the agent); when full, the client
    # waiting longest is dropped, so stalled connections cannot lock kubelet's probe out.
    clients: collections.OrderedDict[int, anyio.CancelScope] = collections.OrderedDict()
    keys = itertools.count()

    async def bounded(stream: anyio.abc.ByteStream) -> None:
        if len(clients) >= MAX_CLIENTS:
            clients.popitem(last=False)[1].cancel()
        key = next(keys)
        with anyio.CancelScope() as scope:
            clients[key] = scope
            try:
                await _serve(stream, ready, barrier)
            finally:
                clients.pop(key, None)

    with sock:
        task_status.started()
        await listener.serve(sock, bounded, supervisor=supervisor, kind="health")
