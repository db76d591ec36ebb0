"""Sidecar health endpoints over HTTP/1.1 (h11 parses; no hand-rolled HTTP).

``/livez`` is 200 while the agent runs; ``/readyz`` is 200 once the barrier has been released,
which is what a native sidecar's startupProbe waits on before the main container starts.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
from collections.abc import Callable

import anyio
import anyio.abc
import h11

__all__ = ["serve_health"]

REQUEST_TIMEOUT = 5.0
MAX_REQUEST = 8192
MAX_CLIENTS = 32


async def _answer(stream: anyio.abc.SocketStream, ready: Callable[[], bool]) -> None:
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_REQUEST)
    async with stream:
        with anyio.move_on_after(REQUEST_TIMEOUT):
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    try:
                        data = await stream.receive(4096)
                    except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
                        data = b""
                    conn.receive_data(data)
                    continue
                if isinstance(event, h11.Request):
                    path = event.target.split(b"?", 1)[0]
                    if path == b"/livez":
                        status, body = 200, b"ok\n"
                    elif path == b"/readyz":
                        status, body = (200, b"released\n") if ready() else (503, b"waiting\n")
                    else:
                        status, body = 404, b"not found\n"
                    headers = [("content-type", "text/plain"), ("content-length", str(len(body)))]
                    headers.append(("connection", "close"))
                    out = conn.send(h11.Response(status_code=status, headers=headers))
                    out = (out or b"") + (conn.send(h11.Data(data=body)) or b"")
                    out += conn.send(h11.EndOfMessage()) or b""
                    await stream.send(out)
                return


async def _serve(stream: anyio.abc.SocketStream, ready: Callable[[], bool]) -> None:
    # A broken or hostile client costs only its own connection.
    with contextlib.suppress(h11.RemoteProtocolError, anyio.BrokenResourceError, OSError):
        await _answer(stream, ready)


async def serve_health(
    host: str | None,
    port: int,
    ready: Callable[[], bool],
    *,
    task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    listener = await anyio.create_tcp_listener(local_host=host, local_port=port)
    # Kubelet probes one request at a time. A bound keeps a flood of idle connections from
    # using up the descriptors (EMFILE from accept() ended the agent); when full, the client
    # waiting longest is dropped, so stalled connections cannot lock kubelet's probe out.
    clients: collections.OrderedDict[int, anyio.CancelScope] = collections.OrderedDict()
    keys = itertools.count()

    async def bounded(stream: anyio.abc.SocketStream) -> None:
        if len(clients) >= MAX_CLIENTS:
            clients.popitem(last=False)[1].cancel()
        key = next(keys)
        with anyio.CancelScope() as scope:
            clients[key] = scope
            try:
                await _serve(stream, ready)
            finally:
                clients.pop(key, None)

    async with listener:
        task_status.started()
        await listener.serve(bounded)
