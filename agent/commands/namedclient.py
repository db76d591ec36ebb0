"""``peer-agent barrier NAME``: the client of a sidecar's named barriers (agent.commands.named).

One ``POST /barrier/NAME`` to the sidecar in this pod; the answer's status becomes the exit code
(200 → 0, 504 → 3 timed out, 409 → 4 aborted, any refusal → 2). The deadline is the client's
``--timeout``, counted from the moment it asks: the sidecar counts it from the request, and
the client gives up itself (exit 3) if no answer has come a moment later. Giving up, or dying,
closes the connection, which withdraws this pod's request (``agent.commands.named``).
The first stop signal ends it too, with 128+n (``agent.commands.firststop``).
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import urllib.parse
from collections.abc import Mapping
from decimal import Decimal

from agent.commands.firststop import first_of
from agent.config.model import DEFAULT_HEALTH_PORT
from agent.config.parse import parse_duration, parse_port
from agent.errors import ConfigError
from agent.exitcodes import ExitCode, signal_exit_code
from agent.options import OPTIONS
from agent.problems import Problems

__all__ = ["CLIENT_OPTIONS", "pass_named_barrier"]

#: the options the client takes: where the sidecar answers, and how long to wait
CLIENT_OPTIONS = ("timeout", "health_port", "listen")
_BY_DEST = {o.dest: o for o in OPTIONS}
#: beyond the barrier's own deadline (which the sidecar keeps), for its answer to arrive
_SLACK = 2.0
_CONNECT_TIMEOUT = 5.0
_CODES = {200: ExitCode.OK, 504: ExitCode.TIMEOUT, 409: ExitCode.ABORTED}


def _seconds(duration: float | None) -> str:
    """``duration`` as the sidecar parses it: plain decimal seconds, exactly the client's value
    (``:g`` wrote 1e+06 from 278h and rounded 1234.5678 to 1234.57; the sidecar refused the
    first as no duration at all)."""
    return format(Decimal(repr(duration or 0.0)), "f")


def pass_named_barrier(
    name: str, flags: Mapping[str, str | None], environ: Mapping[str, str]
) -> tuple[int, str]:
    """(exit code, the sidecar's answer; none when a stop signal ended the wait). ConfigError
    for bad options."""
    p = Problems()

    def get(dest: str) -> str | None:
        return flags.get(dest) or environ.get(_BY_DEST[dest].env) or None

    timeout_text = get("timeout")
    timeout = p.parse(_BY_DEST["timeout"], timeout_text, parse_duration)
    port = p.parse(
        _BY_DEST["health_port"], get("health_port") or str(DEFAULT_HEALTH_PORT), parse_port
    )
    if p.items:
        raise ConfigError(p.items)
    assert port is not None
    host = get("listen") or "127.0.0.1"
    target = f"/barrier/{urllib.parse.quote(name, safe='')}"
    if timeout_text is not None:  # else the sidecar's own --timeout
        target += "?" + urllib.parse.urlencode({"timeout": _seconds(timeout)})
    conn = http.client.HTTPConnection(host, port, timeout=_CONNECT_TIMEOUT)
    try:
        answer, signum = first_of(lambda: _ask(conn, target, timeout), lambda: _cut(conn))
    finally:
        conn.close()
    if signum is not None:
        return signal_exit_code(signum), ""
    assert answer is not None
    return answer


def _ask(conn: http.client.HTTPConnection, target: str, timeout: float | None) -> tuple[int, str]:
    host, port = conn.host, conn.port
    asked = False
    try:
        conn.connect()
        assert conn.sock is not None
        conn.sock.settimeout(timeout + _SLACK if timeout else None)
        conn.request("POST", target)
        asked = True
        response = conn.getresponse()
        body = response.read().decode("utf-8", "replace").strip()
    except TimeoutError:
        if not asked:
            return ExitCode.USAGE, _no_sidecar(host, port, "timed out")
        return ExitCode.TIMEOUT, f"timed out after {timeout:g}s: the sidecar did not answer"
    except (OSError, http.client.HTTPException) as exc:
        return ExitCode.USAGE, _no_sidecar(host, port, getattr(exc, "strerror", None) or exc)
    return _CODES.get(response.status, ExitCode.USAGE), body


def _cut(conn: http.client.HTTPConnection) -> None:
    """Stopped: end the wait for the answer at once (the read returns), which also withdraws
    the request from the sidecar when the client runs in-process and lives on."""
    if (sock := conn.sock) is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _no_sidecar(host: str, port: int, why: object) -> str:
    return (
        f"no sidecar answers on {host}:{port} ({why}): run `peer-agent sidecar` in this pod "
        "(--health-port / PEER_AGENT_HEALTH_PORT)"
    )
