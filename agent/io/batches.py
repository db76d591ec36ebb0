"""A batch of messages for the barrier's sessions, as both drivers send it
(``agent.io.sessions``, ``agent.io.sync.peers``): what is sent, and how it is encoded.

A message goes only to a session still open, is encoded once however many sessions it goes to
(a release to 10,000 members), and is counted as sent; how the bytes are written (at once where
the socket has room, the rest by a task) is the driver's.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable, Iterator, Mapping
from typing import TypeVar

from agent.protocol.wire import Message, encode

__all__ = ["outgoing"]

_C = TypeVar("_C")


def outgoing(
    batch: Iterable[tuple[int, Message]],
    channels: Mapping[int, _C],
    counts: collections.Counter[str],
) -> Iterator[tuple[int, _C, bytes]]:
    """Each message of ``batch`` whose session is still in ``channels``: the session, its
    connection and the message's bytes."""
    encoded: dict[Message, bytes] = {}
    for conn, message in batch:
        if (channel := channels.get(conn)) is None:
            continue
        if (data := encoded.get(message)) is None:
            data = encoded[message] = encode(message)
        counts["messages_sent"] += 1
        yield conn, channel, data
