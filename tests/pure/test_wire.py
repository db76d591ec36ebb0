"""Wire messages: round trips, and everything malformed refused as WireError."""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.errors import WireError
from agent.protocol.wire import (
    EXIT_BARRIER,
    MAX_ENTRIES,
    MAX_MESSAGE,
    Abort,
    Ack,
    Arrive,
    Hello,
    Identity,
    Members,
    Message,
    Proof,
    Refuse,
    Release,
    Role,
    Vouch,
    decode,
    encode,
    named_barrier,
)

pytestmark = pytest.mark.timeout(30)

ME = Identity(job="example-job", uid="5f0c-11", index=2, peers=3, port=29300)
INSTANCE = "18c2f9a1b2c3d4e5-a1b2c3d4"
EXITED = Identity("example-job", "5f0c-11", 2, 3, 29300, INSTANCE, EXIT_BARRIER, 137)
MESSAGES: list[Message] = [
    Hello(ME, Role.PROBE, "ab" * 16),
    Hello(ME, Role.REPLY, "cd" * 16, released=True, proves=True),
    Hello(EXITED, Role.MEMBER, "ab" * 16, proves=True),
    Hello(Identity("j", "u", 0, 1, 1, INSTANCE, named_barrier("ckpt-1")), Role.PROBE, "ab"),
    Proof("00" * 32),
    Arrive(),
    Arrive("0" * 32, "a" * 32, 317),
    Release(),
    Ack(),
    Abort("peer count differs"),
    Refuse("bad token"),
    Vouch(3, "10.0.0.4"),
    Members(((1, "10.0.0.2"), (2, "fd00::3"))),
    Members(tuple((i, f"10.0.{i}.1") for i in range(MAX_ENTRIES))),
]


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_round_trip(message: Message) -> None:
    data = encode(message)
    assert data.endswith(b"\n") and len(data) <= MAX_MESSAGE
    assert decode(data) == message


@pytest.mark.parametrize(
    ("message", "line"),
    [
        (
            Hello(Identity("j", "u", 1, 2, 29300, INSTANCE), Role.PROBE, "n"),
            b'{"v":2,"t":"hello","identity":{"job":"j","uid":"u","index":1,"peers":2,'
            b'"port":29300,"instance":"18c2f9a1b2c3d4e5-a1b2c3d4"},"role":"probe","nonce":"n",'
            b'"released":false,"proves":false}\n',
        ),
        (
            Hello(replace(EXITED, uid="u"), Role.REPLY, "n", proves=True),
            b'{"v":2,"t":"hello","identity":{"job":"example-job","uid":"u","index":2,"peers":3,'
            b'"port":29300,"instance":"18c2f9a1b2c3d4e5-a1b2c3d4","barrier":"exit",'
            b'"exit_code":137},"role":"reply","nonce":"n","released":false,"proves":true}\n',
        ),
        (Refuse("bad token"), b'{"v":2,"t":"refuse","reason":"bad token"}\n'),
        (Release("v1"), b'{"v":2,"t":"release","view":"v1"}\n'),
        (Arrive("v1"), b'{"v":2,"t":"arrive","view":"v1"}\n'),  # all-to-all: as before the tree
        (
            Arrive("0" * 32, "a" * 32, 3),
            b'{"v":2,"t":"arrive","view":"' + b"0" * 32 + b'","owed":"' + b"a" * 32 + b'",'
            b'"count":3}\n',
        ),
    ],
    ids=["hello", "exit-hello", "refuse", "release", "arrive", "aggregate"],
)
def test_encoding_is_compact_json_in_field_order(message: Message, line: bytes) -> None:
    """What agents of this version send: one line, fields in declaration order, the optional
    ones of the identity only when set."""
    assert encode(message) == line


def _hello(**changes: object) -> bytes:
    body = json.loads(encode(Hello(ME, Role.PROBE, "ab")))
    body.update(changes)
    return json.dumps(body).encode()


def _identity(**changes: object) -> bytes:
    return _hello(identity={**vars(ME), **changes})


@pytest.mark.parametrize(
    "identity",
    [
        pytest.param({"instance": "f" * 16}, id="instance-without-tag"),
        pytest.param({"instance": "f" * 32}, id="instance-longer"),
        pytest.param({"instance": INSTANCE + "x137"}, id="instance-with-a-suffix"),
        pytest.param({"instance": INSTANCE.upper()}, id="instance-upper-case"),
        pytest.param({"instance": "ffffffffffffffff-fffffff"}, id="instance-short-tag"),
        pytest.param({"instance": ""}, id="instance-empty-but-present"),
        pytest.param({"barrier": "exit", "exit_code": None}, id="exit-without-code"),
        pytest.param({"barrier": "exit"}, id="exit-code-missing"),
        pytest.param({"exit_code": 0}, id="code-outside-the-exit-barrier"),
        pytest.param({"barrier": "exit", "exit_code": 256}, id="code-too-large"),
        pytest.param({"barrier": "exit", "exit_code": -1}, id="code-negative"),
        pytest.param({"barrier": "exit", "exit_code": True}, id="code-bool"),
        pytest.param({"barrier": ""}, id="start-barrier-spelt-out"),
        pytest.param({"barrier": "named/"}, id="named-without-name"),
        pytest.param({"barrier": "named/../x"}, id="named-bad-name"),
        pytest.param({"barrier": "named/" + "x" * 64}, id="named-too-long"),
        pytest.param({"barrier": "start"}, id="unknown-barrier"),
        pytest.param({"uid": "u/exit", "shoe": 1}, id="unknown-identity-field"),
    ],
)
def test_an_identity_out_of_shape_is_refused(identity: dict[str, object]) -> None:
    """Instance ids are ``<16 hex>-<8 hex>`` and nothing else (no suffix, no other length:
    their order is their fields'); the barrier is start, exit or named/NAME; an exit code
    (0-255) only in the exit barrier, and always there."""
    with pytest.raises(WireError):
        decode(_identity(**identity))


@pytest.mark.parametrize(
    "line",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"\xff\xfe", id="binary"),
        pytest.param(b"[1,2]", id="not-object"),
        pytest.param(b'{"v":3,"t":"ack"}', id="future-version"),
        pytest.param(b'{"v":1,"t":"ack"}', id="past-version"),
        pytest.param(b'{"t":"ack"}', id="no-version"),
        pytest.param(b'{"v":2,"t":"shutdown"}', id="unknown-type"),
        pytest.param(b'{"v":2,"t":"ack","extra":1}', id="unknown-field"),
        pytest.param(_hello(role="admin"), id="bad-role"),
        pytest.param(_hello(identity={"job": "x"}), id="identity-incomplete"),
        pytest.param(_hello(identity=[1]), id="identity-not-object"),
        pytest.param(_hello(released="yes"), id="released-not-bool"),
        pytest.param(_hello(nonce="n" * 65), id="nonce-too-long"),
        pytest.param(
            _hello(identity={"job": "j", "uid": "", "index": True, "peers": 3, "port": 1}),
            id="bool-is-not-int",
        ),
        pytest.param(
            _hello(identity={"job": "j", "uid": "", "index": 0, "peers": 0, "port": 1}),
            id="zero-peers",
        ),
        pytest.param(b'{"v":2,"t":"abort","reason":' + b'"x"' * 2 + b"}", id="broken-json"),
        pytest.param(b"[" * 5000 + b"]" * 5000, id="deep-nesting-oversized"),
        pytest.param(b'{"v":2,"t":"abort","reason":"' + b"x" * 600 + b'"}', id="long-reason"),
        pytest.param(_hello(proof="ab" * 32), id="hello-with-a-proof"),
        pytest.param(_hello(proves="yes"), id="proves-not-bool"),
        pytest.param(b'{"v":2,"t":"arrive","view":"v","count":0}', id="count-zero"),
        pytest.param(b'{"v":2,"t":"arrive","view":"v","count":true}', id="count-bool"),
        pytest.param(b'{"v":2,"t":"arrive","view":"v","count":"3"}', id="count-text"),
        pytest.param(b'{"v":2,"t":"release","view":"v","count":3}', id="release-count"),
    ],
)
def test_malformed_is_refused(line: bytes) -> None:
    with pytest.raises(WireError):
        decode(line)


@given(st.binary(max_size=3000))
def test_any_bytes_end_in_a_message_or_wire_error(data: bytes) -> None:
    with contextlib.suppress(WireError):
        decode(data)


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=20),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
        max_leaves=20,
    )
)
def test_any_json_ends_in_a_message_or_wire_error(value: object) -> None:
    for body in (value, {"v": 2, "t": "hello", "identity": value}, {"v": 2, "t": "hello"}):
        with contextlib.suppress(WireError):
            decode(json.dumps(body).encode())


# --- type confusion: every JSON type in every field of every message ------------------------------
#: raw JSON spellings, NaN and Infinity included (Python's json reads them unless told not to)
ODD_VALUES = [
    "null",
    "true",
    "false",
    "0",
    "1",
    "-1",
    "18446744073709551616",
    "1" + "0" * 300,
    "1.0",
    "-0.0",
    "1e999",
    "NaN",
    "-Infinity",
    '""',
    '"x"',
    '"line\\nbreak"',
    '"\\u001b[31mred"',
    '"\\ud800"',
    "[]",
    "[1]",
    "{}",
    '{"a":1}',
    "[[[{}]]]",
]
_HOLE = "\x00hole\x00"


def _fields(message: Message) -> list[tuple[str, ...]]:
    """Every field's path in the encoded message, the identity's own fields included."""
    body = json.loads(encode(message))
    paths: list[tuple[str, ...]] = [(key,) for key in body]
    if "identity" in body:
        paths += [("identity", key) for key in body["identity"]]
    return paths


def _with(message: Message, path: tuple[str, ...], raw: str) -> tuple[bytes, object]:
    """The message with ``raw`` in the field at ``path``, and the value it had there."""
    body = json.loads(encode(message))
    inner = body
    for key in path[:-1]:
        inner = inner[key]
    original = inner[path[-1]]
    inner[path[-1]] = _HOLE
    return json.dumps(body).replace(json.dumps(_HOLE), raw).encode(), original


_CASES = [
    (message, path, raw) for message in MESSAGES for path in _fields(message) for raw in ODD_VALUES
]


@pytest.mark.parametrize(
    ("message", "path", "raw"),
    _CASES,
    ids=[f"{type(m).__name__}-{'.'.join(p)}-{r[:12]}" for m, p, r in _CASES],
)
def test_a_value_of_another_type_in_any_field_is_a_wire_error(
    message: Message, path: tuple[str, ...], raw: str
) -> None:
    """Found by hand: ``{"v":2,"t":[]}`` raised TypeError (unhashable) out of decode, and the
    agent that read it exited 1. Every field must take only its own type."""
    line, original = _with(message, path, raw)
    try:
        value = json.loads(raw)
    except ValueError:
        value = None  # NaN and friends are not JSON: refused whatever the field
    same_type = type(value) is type(original) and raw not in ("NaN", "-Infinity")
    if not same_type:
        with pytest.raises(WireError):
            decode(line)
    else:
        with contextlib.suppress(WireError):  # a value of the right type may still be refused
            assert decode(line) is not None


@pytest.mark.parametrize(
    "line",
    [
        pytest.param(b'{"v":2,"t":[]}\n', id="type-list"),
        pytest.param(b'{"v":2,"t":{}}\n', id="type-object"),
        pytest.param(b'{"v":true,"t":"ack"}', id="version-true"),
        pytest.param(b'{"v":2.0,"t":"ack"}', id="version-float"),
        pytest.param(b'{"v":2,"t":"ack","t":"release"}', id="repeated-key"),
        pytest.param(b'{"v":2,"v":2,"t":"ack"}', id="repeated-same-key"),
        pytest.param(_hello(nonce="a", released=True)[:-1] + b',"released":false}', id="repeated"),
        pytest.param('{"v":2,"t":"ack"}'.encode("utf-16"), id="utf-16"),
        pytest.param(b'\xef\xbb\xbf{"v":2,"t":"ack"}', id="utf-8-bom"),
        pytest.param(b'{"v":2,"t":"ack"}\xff', id="trailing-invalid-utf-8"),
        pytest.param(b'{"v":2,"t":"abort","reason":"a\\nforged line"}', id="reason-newline"),
        pytest.param(b'{"v":2,"t":"refuse","reason":"\\u001b[2J"}', id="reason-escape"),
        pytest.param(b'{"v":2,"t":"refuse","reason":"\\u202eevil"}', id="reason-bidi"),
        pytest.param(_hello(identity={**vars(ME), "uid": "u\r\nx"}), id="uid-crlf"),
        pytest.param(_hello(identity={**vars(ME), "job": "j\x07"}), id="job-bell"),
        pytest.param(b'{"v":2,"t":"ack"} {"v":2,"t":"ack"}', id="two-objects"),
    ],
)
def test_strictly_refused(line: bytes) -> None:
    with pytest.raises(WireError):
        decode(line)


def test_an_error_names_a_peers_value_short_and_escaped() -> None:
    with pytest.raises(WireError) as caught:
        decode(b'{"v":2,"t":"\\u001b[2J' + b"x" * 500 + b'"}')
    text = str(caught.value)
    assert text.isprintable() and len(text) < 80, text


@pytest.mark.parametrize(
    "line",
    [
        b'{"v":2,"t":"vouch","index":-1,"address":"10.0.0.4"}',
        b'{"v":2,"t":"vouch","index":3,"address":"10.0.0.4 evil"}',
        b'{"v":2,"t":"vouch","index":3,"address":""}',
        b'{"v":2,"t":"vouch","index":3}',
        b'{"v":2,"t":"members","entries":[[1]]}',
        b'{"v":2,"t":"members","entries":[[1,"10.0.0.2",3]]}',
        b'{"v":2,"t":"members","entries":[["1","10.0.0.2"]]}',
        b'{"v":2,"t":"members","entries":[[1,"pod-1.svc"]]}',
        b'{"v":2,"t":"members","entries":{"1":"10.0.0.2"}}',
        b'{"v":2,"t":"members","entries":['
        + b",".join(b'[%d,"10.0.0.1"]' % i for i in range(MAX_ENTRIES + 1))
        + b"]}",
    ],
)
def test_membership_out_of_shape_is_refused(line: bytes) -> None:
    """What a member reports and what the coordinator hands out (``agent.core.vouching``) come
    from peers: an index out of range, an address that is not one, a list past
    ``MAX_ENTRIES`` close that connection only (WireError), never the process."""
    with pytest.raises(WireError):
        decode(line + b"\n")


_NAME_CHARACTERS = "aZ09._-/é ٣\n"
_BARRIERS = (
    st.sampled_from(["exit", "named/a", "named/" + "x" * 63, "named/" + "x" * 64, "exit\n"])
    | st.text(alphabet="exitnamd" + _NAME_CHARACTERS, max_size=12)
    | st.text(alphabet=_NAME_CHARACTERS, max_size=66).map(lambda name: "named/" + name)
)


@given(_BARRIERS)
def test_a_barrier_is_exactly_what_its_pattern_says(barrier: str) -> None:
    """The decoder tests characters (a compiled pattern cost every start 0.8 million
    instructions); it takes exactly the barriers the pattern matches whole, ASCII only."""
    identity: dict[str, object] = {**vars(ME), "instance": INSTANCE, "barrier": barrier}
    del identity["exit_code"]
    if barrier == EXIT_BARRIER:
        identity["exit_code"] = 0
    try:
        decode(_hello(identity=identity))
        taken = True
    except WireError:
        taken = False
    assert taken == bool(re.fullmatch(r"exit|named/[A-Za-z0-9][A-Za-z0-9._-]{0,62}", barrier))
