"""Wire messages: versioned, length-bounded JSON lines, decoded strictly.

Pure. A malformed, oversized or unknown message raises :class:`WireError` and nothing else,
whatever the bytes (every JSON type in every field, duplicate keys, NaN, UTF-16, lone
surrogates): the caller closes that one connection. Every text field is printable, so what a
peer says can be logged as it is (no newline, escape sequence or other control character).
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

from agent.errors import WireError
from agent.protocol.instance import is_instance
from agent.values import fields, value

__all__ = [
    "EXIT_BARRIER",
    "MAX_MESSAGE",
    "START_BARRIER",
    "VERSION",
    "Abort",
    "Ack",
    "Arrive",
    "Hello",
    "Identity",
    "Members",
    "Message",
    "Proof",
    "Refuse",
    "Release",
    "Role",
    "Vouch",
    "decode",
    "encode",
    "named_barrier",
]

#: 2: the client proves its token first, the instance id is ``<started>-<tag>``, the barrier
#: and the workload's exit code are fields of the identity
VERSION = 2
#: the longest Job uid a hello carries (a Kubernetes uid is 36 characters)
MAX_UID = 128
MAX_MESSAGE = 2048  # bytes, newline included; a hello is about 300
START_BARRIER = ""  # the start barrier's namespace: a hello without "barrier"
EXIT_BARRIER = "exit"  # ``run --exit-barrier``'s second barrier
_NAMED = "named/"  # + NAME: a named barrier (``peer-agent barrier NAME``)
_NAME_FIRST = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
_NAME_REST = _NAME_FIRST | frozenset("._-")  # ASCII only, as agent.commands.named.NAME
_MAX_EXIT_CODE = 255


def _is_barrier(text: str) -> bool:
    """The exit barrier's namespace, or ``named/NAME``: 1 to 63 characters, the first a
    letter or digit."""
    if not text.startswith(_NAMED):
        return text == EXIT_BARRIER
    name = text[len(_NAMED) :]
    return 0 < len(name) <= 63 and name[0] in _NAME_FIRST and _NAME_REST.issuperset(name)


def named_barrier(name: str) -> str:
    """The namespace of named barrier ``name`` (a valid name: ``agent.commands.named.NAME``)."""
    return _NAMED + name


@value
class Identity:
    """What every contact states first, so that a wrong pod at a stale address is told apart."""

    job: str
    uid: str
    index: int
    peers: int
    port: int
    #: which process of the pod (``agent.protocol.instance``): tells a restarted pod (same
    #: index, new instance) from the one reached; "" from a client that has none
    instance: str = ""
    #: which of the Job's barriers the hello is for: START_BARRIER, EXIT_BARRIER or
    #: named_barrier(NAME); one port serves them all (``agent.io.mux``)
    barrier: str = START_BARRIER
    #: in the exit barrier only: the exit code of this pod's workload (0-255)
    exit_code: int | None = None


class Role(StrEnum):
    """What a hello opens: a ``probe`` of a peer, a ``member``'s session with the coordinator,
    or the server's ``reply`` to either."""

    PROBE = "probe"
    MEMBER = "member"
    REPLY = "reply"


@value
class Hello:
    """Opens every connection in both directions. ``proves``: this side has a token, proves
    it and asks the other side to (the client first, then the server: ``agent.io.channel``)."""

    identity: Identity
    role: Role
    nonce: str
    released: bool = False
    proves: bool = False


@value
class Proof:
    """An answer to the other side's nonce, when a token is set: the client's first, then,
    once it checked, the server's."""

    proof: str


@value
class Arrive:
    """Member → coordinator: I have reached all my targets; ``view``: which instance of each
    (a digest, :meth:`agent.core.reach.Reach.view`). On a sparse graph ``view`` is the sum
    ``A`` of the edges it proved and ``owed`` the sum ``B`` its neighbours owe it, 32 hex
    digits each (``agent.core.edgesums``). ``count``: in a tree of coordinators
    (``agent.core.groups``), a group coordinator's aggregate of its group's live arrivals and
    its own: how many pods its sums cover (0: one pod, the sender; omitted on the wire)."""

    view: str = ""
    owed: str = ""
    count: int = 0


@value
class Release:
    """Coordinator → member: everyone has arrived with the same ``view``; on a sparse graph,
    ``view`` and ``owed`` name the arrival of this member that was counted."""

    view: str = ""
    owed: str = ""


@value
class Ack:
    """Member → coordinator: I got the verdict; the coordinator may leave."""


@value
class Abort:
    """Coordinator → member: peers disagree; everyone exits 4."""

    reason: str


@value
class Refuse:
    """Server → client: this contact is not accepted (bad token, wrong job, not the coordinator)."""

    reason: str


#: the most (index, address) pairs one ``Members`` carries: 32 of the longest (an IPv6 address
#: and a seven-digit index, about 55 bytes each) stay under ``MAX_MESSAGE``
MAX_ENTRIES = 32
#: an address as a pod sends it: IPv4 or IPv6 text, no zone (checked again as an address where
#: it is used; this keeps the log and the sets free of anything else)
_ADDRESS = frozenset("0123456789ABCDEFabcdef.:")  # a character check, as ``_HEX``


@value
class Vouch:
    """Member → coordinator (past a cut Service answer): DNS gave ``address`` for pod
    ``index``'s name (its ring neighbour), and it answered there as that pod
    (``agent.core.vouching``)."""

    index: int
    address: str


@value
class Members:
    """Coordinator → member (past a cut Service answer): pods' addresses vouched for, as
    (index, address) pairs, at most ``MAX_ENTRIES`` a message (``agent.core.vouching``)."""

    entries: tuple[tuple[int, str], ...]


Message = Hello | Proof | Arrive | Release | Ack | Abort | Refuse | Vouch | Members
_TYPES: dict[str, type[Message]] = {
    "hello": Hello,
    "proof": Proof,
    "arrive": Arrive,
    "release": Release,
    "ack": Ack,
    "abort": Abort,
    "refuse": Refuse,
    "vouch": Vouch,
    "members": Members,
}
_NAMES = {cls: name for name, cls in _TYPES.items()}
#: the keys each message may have (``fields()`` for every decode cost a tenth of it)
_KEYS = {cls: frozenset({"v", "t", *(f.name for f in fields(cls))}) for cls in _TYPES.values()}
#: text → member by a dict lookup: ``Role(text)`` costs 15 times as much, and raises
_ROLES = {role.value: role for role in Role}


_JSON = json.JSONEncoder(separators=(",", ":"))


def _address(value: Any, key: str) -> str:
    if not isinstance(value, str) or not 2 <= len(value) <= 45 or not _ADDRESS.issuperset(value):
        raise WireError(f"bad field {key!r}")
    return value


def _entries(body: dict[str, Any]) -> tuple[tuple[int, str], ...]:
    pairs = body.get("entries")
    if not isinstance(pairs, list) or len(pairs) > MAX_ENTRIES:
        raise WireError("bad field 'entries'")
    out = []
    for pair in pairs:
        if not isinstance(pair, list) or len(pair) != 2:
            raise WireError("bad field 'entries'")
        index = pair[0]
        if type(index) is not int or not 0 <= index <= 1_000_000:
            raise WireError("bad field 'entries'")
        out.append((index, _address(pair[1], "entries")))
    return tuple(out)


def _identity_body(identity: Identity) -> dict[str, Any]:
    """The identity's fields, the optional ones only when set (as the decoder reads them)."""
    body = vars(identity).copy()
    if not identity.instance:
        del body["instance"]
    if identity.barrier == START_BARRIER:
        del body["barrier"]
    if identity.exit_code is None:
        del body["exit_code"]
    return body


def encode(message: Message) -> bytes:
    # The fields as they are (dataclasses.asdict deep-copies: 4x the cost, once per probe)
    body: dict[str, Any] = {"v": VERSION, "t": _NAMES[type(message)], **vars(message)}
    if isinstance(message, Hello):
        body["identity"] = _identity_body(message.identity)
    elif isinstance(message, Arrive | Release):
        if not message.owed:
            del body["owed"]  # a complete graph's: as before sums were added
        if isinstance(message, Arrive) and not message.count:
            del body["count"]  # one pod's: as before the tree
    data = _JSON.encode(body).encode() + b"\n"
    if len(data) > MAX_MESSAGE:
        raise ValueError(f"message too large to send: {len(data)} bytes")
    return data


def _text(body: dict[str, Any], key: str, limit: int) -> str:
    value = body.get(key)
    # Printable only: a reason or uid reaches the log, where a newline or ESC would forge lines
    # or drive the terminal; and JSON escapes can spell lone surrogates (not printable either),
    # which no UTF-8 encoder (HMAC, log) accepts.
    if not isinstance(value, str) or len(value) > limit or not value.isprintable():
        raise WireError(f"bad field {key!r}")
    return value


def _int(body: dict[str, Any], key: str, low: int, high: int) -> int:
    value = body.get(key)
    if type(value) is not int or not low <= value <= high:
        raise WireError(f"bad field {key!r}")
    return value


_IDENTITY_KEYS = frozenset(f.name for f in fields(Identity))


def _identity(body: Any) -> Identity:
    if not isinstance(body, dict) or not _IDENTITY_KEYS.issuperset(body):
        raise WireError("bad field 'identity'")
    instance = _text(body, "instance", 25) if "instance" in body else ""
    if "instance" in body and not is_instance(instance):
        raise WireError("bad field 'instance'")
    barrier = _text(body, "barrier", 70) if "barrier" in body else START_BARRIER
    if "barrier" in body and not _is_barrier(barrier):
        raise WireError("bad field 'barrier'")
    exit_code = None
    if barrier == EXIT_BARRIER or "exit_code" in body:  # the exit barrier's, and only its
        exit_code = _int(body, "exit_code", 0, _MAX_EXIT_CODE)
        if barrier != EXIT_BARRIER:
            raise WireError("bad field 'exit_code'")
    return Identity(
        job=_text(body, "job", 63),
        uid=_text(body, "uid", MAX_UID),
        index=_int(body, "index", 0, 1_000_000),
        peers=_int(body, "peers", 1, 1_000_000),
        port=_int(body, "port", 1, 65535),
        instance=instance,
        barrier=barrier,
        exit_code=exit_code,
    )


_HEX = frozenset("0123456789abcdef")  # a character check: no regex compiled at import


def _sum(body: dict[str, Any], key: str) -> str:
    """An edge sum: 128 bits as 32 lowercase hex digits (``agent.core.edgesums``)."""
    text = _text(body, key, 32)
    if len(text) != 32 or not _HEX.issuperset(text):
        raise WireError(f"bad field {key!r}")
    return text


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object without repeated keys: with them, which one counts depends on the parser."""
    body = dict(pairs)
    if len(body) != len(pairs):
        raise WireError("repeated key in a JSON object")
    return body


def _no_constant(name: str) -> Any:
    raise WireError(f"{name} is not JSON")


def _shown(value: object) -> str:
    """A peer's value in an error message: escaped by repr, and short."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


#: built once: json.loads with hooks builds a decoder (and its scanner) on every call
_DECODER = json.JSONDecoder(object_pairs_hook=_unique, parse_constant=_no_constant)


def decode(line: bytes) -> Message:
    """Parse one line; raises WireError for anything but a well-formed message of this version."""
    if len(line) > MAX_MESSAGE:
        raise WireError(f"message over {MAX_MESSAGE} bytes")
    try:
        # UTF-8 only: json.loads would take bytes in UTF-16 or UTF-32 too.
        text = line.decode()
        body = _DECODER.decode(text)
    except (ValueError, RecursionError):
        raise WireError("not a JSON message") from None
    if not isinstance(body, dict):
        raise WireError("not a JSON object")
    version, name = body.get("v"), body.get("t")
    if type(version) is not int or version != VERSION:  # true and 1.0 equal 1 in Python
        raise WireError(f"unsupported protocol version {_shown(version)}")
    cls = _TYPES.get(name) if isinstance(name, str) else None
    if cls is None:
        raise WireError(f"unknown message type {_shown(name)}")
    if not _KEYS[cls].issuperset(body):
        raise WireError(f"unexpected fields in {body['t']!r}")
    if cls is Hello:
        role = _ROLES.get(_text(body, "role", 8))
        released, proves = body.get("released", False), body.get("proves", False)
        if role is None or not isinstance(released, bool) or not isinstance(proves, bool):
            raise WireError("bad hello")
        return Hello(
            identity=_identity(body.get("identity")),
            role=role,
            nonce=_text(body, "nonce", 64),
            released=released,
            proves=proves,
        )
    if cls is Proof:
        return Proof(_text(body, "proof", 128))
    if cls is Abort or cls is Refuse:
        return cls(_text(body, "reason", 512))
    if cls is Vouch:
        return Vouch(_int(body, "index", 0, 1_000_000), _address(body.get("address"), "address"))
    if cls is Members:
        return Members(_entries(body))
    if cls is Arrive or cls is Release:
        view = _text(body, "view", 64) if "view" in body else ""
        owed = _sum(body, "owed") if "owed" in body else ""
        if cls is Arrive and "count" in body:
            return Arrive(view, owed, _int(body, "count", 1, 1_000_000))
        return cls(view, owed)
    return cls()  # type: ignore[call-arg]  # the field-less messages
