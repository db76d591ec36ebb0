"""Which process of a pod says hello: its instance id, and which of two instances is newer.

Pure. An instance id is ``<started>-<tag>``: the process's start time (nanoseconds since the
epoch, 16 lowercase hex digits), then a random tie-break (8 lowercase hex digits). The wire
accepts nothing else (``agent.protocol.wire``), and two ids are ordered field by field, start
time first: no suffix, length or other text can make an instance look newer than it started.
What an instance says beyond who it is (the workload's exit code, which barrier) travels in
fields of its own (``wire.Identity``).
"""

from __future__ import annotations

import functools

__all__ = ["instance_id", "is_instance", "newer", "order"]

_TAG = 0xFFFFFFFF
_HEX = frozenset("0123456789abcdef")


def is_instance(text: str) -> bool:
    """Whether ``text`` is an instance id: 16 and 8 lowercase hex digits around a hyphen."""
    return (
        len(text) == 25
        and text[16] == "-"
        and _HEX.issuperset(text[:16])
        and _HEX.issuperset(text[17:])
    )


def instance_id(started_ns: int, tag: int) -> str:
    """The id of the process started at ``started_ns`` with the random ``tag`` (32 bits)."""
    return f"{started_ns & 0xFFFFFFFFFFFFFFFF:016x}-{tag & _TAG:08x}"


# Kept for the ids seen last: each hello, contact and probe reply compares its id with the
# newest heard of its index, the same few ids again and again (a pod meets ~20-60 peers, the
# in-memory cluster's 100,000 cores share one process); parsing each was most of a hello's
# cost. A bad id raises every time (exceptions are not kept).
@functools.lru_cache(maxsize=4096)
def order(instance: str) -> tuple[int, int]:
    """(start time, tie-break) of ``instance``; the empty id (a probe that cannot tell
    instances apart) comes before every other. ValueError for anything else: the wire never
    delivers it."""
    if not instance:
        return (-1, -1)
    if not is_instance(instance):
        raise ValueError(f"not an instance id: {instance!r}")
    return int(instance[:16], 16), int(instance[17:], 16)


def newer(a: str, b: str) -> bool:
    """Whether instance ``a`` started after ``b`` (the tie-break decides a tie)."""
    return order(a) > order(b)
