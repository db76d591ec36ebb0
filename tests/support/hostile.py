"""Hostile input for fuzzing: wire lines with every JSON type in every field of every message,
and HTTP requests of every shape. Hypothesis strategies, shared by the fuzz tests.

A wire line starts from a well-formed message (so that the deeper paths run: a valid hello opens
a session, whose next lines reach the barrier's core) and is then bent: a field replaced by any
JSON value, dropped or added, a key repeated, the version changed, the bytes cut, padded past
the size bound or broken as UTF-8.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from typing import Any

from hypothesis import strategies as st

from agent.protocol.wire import EXIT_BARRIER, MAX_MESSAGE, Hello, Identity, Role, encode

__all__ = ["http_requests", "json_values", "split", "wire_lines"]

#: every JSON type, with the values that broke parsers: huge ints, NaN, lone surrogates, nesting
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**63, max_value=10**400)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | st.sampled_from(["\ud800", "\x1b[2J", "a\nb", "\u202e", "probe", "member", "reply", ""]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


def _hello(me: Identity, role: Role) -> dict[str, Any]:
    """A well-formed hello, as an agent of this version encodes it."""
    body: dict[str, Any] = json.loads(encode(Hello(me, role, "ab" * 16)))
    return body


def _bases(me: Identity) -> list[dict[str, Any]]:
    exited = dataclasses.replace(me, barrier=EXIT_BARRIER, exit_code=137)
    return [
        _hello(me, Role.PROBE),
        _hello(me, Role.MEMBER),
        _hello(me, Role.REPLY),
        _hello(exited, Role.PROBE),
        {"v": 2, "t": "proof", "proof": "00" * 32},
        {"v": 2, "t": "arrive"},
        {"v": 2, "t": "release"},
        {"v": 2, "t": "ack"},
        {"v": 2, "t": "abort", "reason": "peer count differs"},
        {"v": 2, "t": "refuse", "reason": "bad token"},
    ]


_HOLE = "\x00hole\x00"


@st.composite
def _bent(draw: st.DrawFn, base: dict[str, Any]) -> bytes:
    body = json.loads(json.dumps(base))  # a deep copy
    extra = ""
    for _ in range(draw(st.integers(0, 2))):
        inner = body
        if "identity" in body and isinstance(body["identity"], dict) and draw(st.booleans()):
            inner = body["identity"]
        keys = sorted(inner)
        how = draw(st.sampled_from(["replace", "drop", "add", "repeat", "version", "type"]))
        if how == "replace" and keys:
            inner[draw(st.sampled_from(keys))] = draw(json_values)
        elif how == "drop" and keys:
            del inner[draw(st.sampled_from(keys))]
        elif how == "add":
            inner[draw(st.text(max_size=8))] = draw(json_values)
        elif how == "repeat" and keys:  # a key again, after the object's own
            key = draw(st.sampled_from(keys))
            extra += f",{json.dumps(key)}:{json.dumps(draw(json_values))}"
        elif how == "version":
            body["v"] = draw(st.sampled_from([0, 1, 3, True, 2.0, "2", None, -1, 2**64]))
        elif how == "type":
            body["t"] = draw(json_values | st.sampled_from(["hello", "HELLO", "shutdown"]))
    text = json.dumps(body, allow_nan=True, ensure_ascii=draw(st.booleans()))
    if extra:
        text = text[:-1] + extra + "}"
    data = text.encode("utf-8", "surrogatepass")
    return data + b"\n"


@st.composite
def _damaged(draw: st.DrawFn, line: bytes) -> bytes:
    how = draw(st.sampled_from(["none", "none", "cut", "pad", "utf8", "bytes", "newline"]))
    if how == "cut":
        return line[: draw(st.integers(0, len(line)))]
    if how == "pad":  # past the bound, before the newline
        return line[:-1] + b" " * (MAX_MESSAGE + draw(st.integers(-4, 4)) - len(line)) + b"\n"
    if how == "utf8":
        at = draw(st.integers(0, len(line)))
        return (
            line[:at]
            + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x00"]))
            + line[at:]
        )
    if how == "bytes":
        return draw(st.binary(max_size=64)) + b"\n"
    if how == "newline":  # one line cut in two
        at = draw(st.integers(0, len(line)))
        return line[:at] + b"\n" + line[at:]
    return line


def wire_lines(me: Identity) -> st.SearchStrategy[bytes]:
    """One line (or what should have been one) from a peer that says it is ``me``."""
    return st.sampled_from(_bases(me)).flatmap(_bent).flatmap(_damaged)


@st.composite
def split(draw: st.DrawFn, data: bytes) -> list[bytes]:
    """``data`` in the pieces a client sends it in: anywhere from whole to a byte at a time."""
    if len(data) < 2 or draw(st.booleans()):
        return [data]
    cuts = sorted(set(draw(st.lists(st.integers(1, len(data) - 1), max_size=8))))
    if draw(st.integers(0, 9)) == 0 and len(data) <= 600:
        cuts = list(range(1, len(data)))  # every byte
    edges = [0, *cuts, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges)]


_METHODS = [b"GET", b"HEAD", b"POST", b"PUT", b"OPTIONS", b"CONNECT", b"TRACE", b"DELETE", b"PRI"]
_TARGETS = [b"/livez", b"/readyz", b"/readyz?x=1", b"*", b"a:443", b"/", b"http://x/livez", b"//"]
_VERSIONS = [b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2.0", b"HTTP/0.9", b"", b"HTTP/1.1 x"]
_HEADERS = [
    (b"Host", b"x"),
    (b"Connection", b"Upgrade"),
    (b"Upgrade", b"websocket"),
    (b"Upgrade", b"h2c"),
    (b"Expect", b"100-continue"),
    (b"Transfer-Encoding", b"chunked"),
    (b"Transfer-Encoding", b"gzip, chunked"),
    (b"Content-Length", b"5"),
    (b"Content-Length", b"-1"),
    (b"Content-Length", b"99999999999999999999"),
    (b"Connection", b"keep-alive"),
    (b"X", b"a" * 9000),
]
_token = st.binary(min_size=1, max_size=12)


@st.composite
def _request(draw: st.DrawFn) -> bytes:
    method = draw(st.sampled_from(_METHODS) | _token)
    target = draw(st.sampled_from(_TARGETS) | _token)
    version = draw(st.sampled_from(_VERSIONS))
    line = b" ".join(part for part in (method, target, version) if part)
    headers = draw(st.lists(st.sampled_from(_HEADERS) | st.tuples(_token, _token), max_size=5))
    if draw(st.integers(0, 3)):
        headers.insert(0, (b"Host", b"x"))
    body = draw(st.sampled_from([b"", b"hello", b"5\r\nhello\r\n0\r\n\r\n", b"0\r\n\r\n"]))
    eol = draw(st.sampled_from([b"\r\n", b"\r\n", b"\n"]))
    head = eol.join([line, *(k + b": " + v for k, v in headers)])
    return head + eol + eol + body


@st.composite
def http_requests(draw: st.DrawFn) -> bytes:
    """What reaches the health port: requests of any method, target, version and headers,
    pipelined, cut short, or not HTTP at all."""
    shape = draw(st.sampled_from(["one", "one", "pipelined", "cut", "bytes"]))
    if shape == "bytes":
        return draw(st.binary(max_size=200))
    first = draw(_request())
    if shape == "pipelined":
        return first + draw(_request())
    if shape == "cut":
        return first[: draw(st.integers(0, len(first)))]
    return first
