"""Which barrier instance of a pod a connection is for: the one its hello names.

Pure. One port serves every barrier instance of a process (``agent.io.mux``): the start
barrier, ``run --exit-barrier``'s exit barrier, a sidecar's named barriers. Each registers
under its key (job, uid, barrier namespace); a hello goes to the instance whose key it states,
and one for an instance not registered (yet) to the first registered, the start barrier, which
answers it as a stranger. The shared port and the in-memory cluster of the tests route by this
same function.
"""

from __future__ import annotations

from collections.abc import Iterable

from agent.protocol.wire import Identity

__all__ = ["Key", "key_of", "route"]

#: a barrier instance on the shared port: (job, job uid, barrier namespace)
Key = tuple[str, str, str]


def key_of(identity: Identity) -> Key:
    return identity.job, identity.uid, identity.barrier


def route(hello: Identity, registered: Iterable[Key]) -> Key | None:
    """The registered instance a hello from ``hello`` goes to (``registered`` in the order the
    instances registered), or None when none is."""
    key = key_of(hello)
    first = None
    for candidate in registered:
        if candidate == key:
            return key
        first = first or candidate
    return first
