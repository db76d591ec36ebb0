"""Sidecar health endpoints over HTTP/1.1 (h11 parses; no hand-rolled HTTP).

``/livez`` is 200 while the agent runs; ``/readyz`` is 200 once the barrier has been released,
which is what a native sidecar's startupProbe waits on before the main container starts.
GET and HEAD are answered (HEAD without a body: sending one raised out of h11 and ended the
sidecar); any other method gets 405, a request h11 cannot parse 400 or 431 when it still can.
A sidecar also answers ``POST /barrier/NAME`` (named barriers, :mod:`agent.commands.named`),
which waits.
One request per connection, then it is closed. Whatever a client sends costs only its own
connection: the port is served by ``listener.serve`` under the supervisor.

Bounded: at most :data:`MAX_CLIENTS` connections that have not sent a whole request yet, and
at most :data:`MAX_ANSWERED` answered ones still sending their answer or lingering; a newcomer
beyond either drops the oldest connection of the source address holding the most
(``agent.io.handshaking``), so idle connections, or requests whose answers are never read, from
a few addresses can neither use up the descriptors nor cut kubelet's probe or a local client
(its address holds one or two). A request read is never dropped for a newcomer before it is
answered: kubelet's probe is answered, and a client waiting in a named barrier waits on (those
are bounded by ``agent.commands.named``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio
import anyio.abc
import h11

from agent.core.log import Reporter
from agent.io import listener
from agent.io.handshaking import Handshaking
from agent.io.supervisor import Supervisor
from agent.io.tcp import TCPStream

__all__ = ["HealthBounds", "serve_health"]

REQUEST_TIMEOUT = 5.0
MAX_REQUEST = 8192
MAX_CLIENTS = 32
#: answered connections still sending or lingering (a flood of requests whose answers are never
#: read held a descriptor each for up to REQUEST_TIMEOUT + LINGER, without a bound)
MAX_ANSWERED = 32
#: after the answer, what the client still sends is read and dropped (see ``_linger``)
LINGER, MAX_LINGER = 1.0, 65536
_METHODS = (b"GET", b"HEAD")
#: named barriers (agent.commands.named): POST /barrier/NAME
PREFIX = b"/barrier/"
BarrierHandler = Callable[[str, str, anyio.abc.ByteStream], Awaitable[tuple[int, bytes]]]
_T = TypeVar("_T")


class HealthBounds:
    """The health port's two bounds, both shared fairly between source addresses."""

    def __init__(self, port: int = 0, report: Reporter | None = None) -> None:
        # no peer probes this port: kubelet probes again, a barrier client may ask again
        again = "kubelet's probe or a client asks again"
        self.unread = Handshaking(
            limit=MAX_CLIENTS,
            port=port,
            report=report,
            unproven="without a whole request yet",
            retried=again,
        )
        self.answered = Handshaking(
            limit=MAX_ANSWERED,
            port=port,
            report=report,
            unproven="answered and closing",
            retried=again,
        )


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


async def _request(
    stream: anyio.abc.ByteStream, conn: h11.Connection, unread: Handshaking, address: str
) -> object:
    """The request (an h11 event), an h11.RemoteProtocolError to answer, or None: closed,
    too slow, or dropped for a newcomer while it had not sent a whole request."""
    with unread.admit(address) as ticket:
        with anyio.move_on_after(REQUEST_TIMEOUT):
            try:
                while (event := conn.next_event()) is h11.NEED_DATA:
                    conn.receive_data(await _receive(stream))
            except h11.RemoteProtocolError as exc:
                if conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
                    return None
                return exc
            return event if isinstance(event, h11.Request) else None
    del ticket
    return None


async def _while_connected(
    stream: anyio.abc.ByteStream, work: Callable[[], Awaitable[_T]]
) -> _T | None:
    """``work``'s result; None, ``work`` cancelled, once the client has closed or reset its
    connection (a named barrier's client that gave up or died: it stops waiting)."""
    result: list[_T] = []
    async with anyio.create_task_group() as tg:

        async def run() -> None:
            result.append(await work())
            tg.cancel_scope.cancel()

        async def watch() -> None:
            read = 0  # what a client sends after its request is read and dropped (bounded)
            while read < MAX_LINGER and (data := await _receive(stream)):
                read += len(data)
            if read < MAX_LINGER:
                tg.cancel_scope.cancel()

        tg.start_soon(run)
        tg.start_soon(watch)
    return result[0] if result else None


async def _answer(
    stream: anyio.abc.ByteStream,
    ready: Callable[[], bool],
    barrier: BarrierHandler | None,
    bounds: HealthBounds,
    address: str,
) -> None:
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_REQUEST)
    event = await _request(stream, conn, bounds.unread, address)
    if isinstance(event, h11.RemoteProtocolError):
        out = _response(conn, event.error_status_hint, b"bad request\n", head=False)
    elif not isinstance(event, h11.Request):  # closed, too slow or dropped before a request
        return
    elif barrier is not None and event.method == b"POST" and event.target.startswith(PREFIX):
        # Waits as long as the named barrier does (its own deadline), not REQUEST_TIMEOUT.
        name, _, query = event.target[len(PREFIX) :].partition(b"?")
        answer = await _while_connected(
            stream, lambda: barrier(name.decode("latin-1"), query.decode("latin-1"), stream)
        )
        if answer is None:
            return
        out = _response(conn, *answer, head=False)
    else:
        status, body = _route(event, ready)
        out = _response(conn, status, body, head=event.method == b"HEAD")
    # Dropped for a newcomer (the address holding the most answered ones): cancelled, closed.
    with bounds.answered.admit(address), anyio.move_on_after(REQUEST_TIMEOUT):
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
    barrier: BarrierHandler | None,
    bounds: HealthBounds,
    address: str = "",
) -> None:
    """One connection from ``address`` (its source: what the bounds share by)."""
    async with stream:
        # A client that goes away mid-answer costs only its own connection.
        with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            await _answer(stream, ready, barrier, bounds, address)


async def serve_health(
    host: str | None,
    port: int,
    ready: Callable[[], bool],
    *,
    supervisor: Supervisor,
    barrier: BarrierHandler | None = None,
    report: Reporter | None = None,
    task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until cancelled; OSError when the port cannot be bound. With ``barrier``, also
    ``POST /barrier/NAME[?timeout=D]``, answered by ``barrier(NAME, query, stream)``;
    ``report``: where the bound says, once, that it drops connections."""
    sock = listener.listen(host, port)
    bounds = HealthBounds(port, report)

    async def serve(stream: TCPStream) -> None:
        await _serve(stream, ready, barrier, bounds, stream.peer)

    with sock:
        task_status.started()
        await listener.serve(sock, serve, supervisor=supervisor, kind="health", half_close=True)
