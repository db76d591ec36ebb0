"""File descriptors: what N peers need, checked (and raised to the hard limit) before starting.

Every agent has up to ``MAX_IN_FLIGHT`` probes of listed addresses open and ``PUSH_RESERVE``
more of peers that just said hello; up to one attempt by name per peer (at most
``MAX_IN_FLIGHT``) and one lookup of a claimed pod's name per index a held contact claims (at
most ``LOOKUPS``), each one socket at a time; and it serves up to ``MAX_HANDSHAKING`` incoming
contacts still in their handshake. The coordinator also holds one session per member (a session
is never dropped for a bound), counted or held, and up to ``HELD.total`` more held sessions from
addresses DNS does not list (``agent.core.admission``). A limit that cannot cover that would
fail mid-barrier with EMFILE, so it is a usage error up front instead.
"""

from __future__ import annotations

import resource

from agent.core.admission import HELD, SIGHTED
from agent.errors import ConfigError

__all__ = ["MAX_HANDSHAKING", "MAX_IN_FLIGHT", "PUSH_RESERVE", "ensure_fd_limit", "fds_needed"]

MAX_IN_FLIGHT = 256  # probes at a time (and as many attempts by name)
PUSH_RESERVE = 32  # probes only for peers that said hello, beyond MAX_IN_FLIGHT
#: incoming contacts in their handshake at once (peers' probes, sessions being opened); beyond
#: it the one stalled longest is dropped, so a flood cannot exhaust the descriptors
MAX_HANDSHAKING = 256
#: lookups at once: one per index claimed by what waits to be vouched for
LOOKUPS = HELD.total + SIGHTED.total
_BASE = 64  # the listener, DNS sockets, stdio, health server, slack
_REPLACED = 128  # sessions of members that reconnected, until the loop closes the old one


def fds_needed(peers: int) -> int:
    """3 peers need 1,001 (within the common 1,024); 10,001 peers 11,761."""
    outgoing = MAX_IN_FLIGHT + PUSH_RESERVE + min(MAX_IN_FLIGHT, peers) + min(LOOKUPS, peers)
    incoming = MAX_HANDSHAKING + HELD.total + peers + _REPLACED
    return _BASE + outgoing + incoming


def ensure_fd_limit(peers: int) -> int:
    """Raise the soft RLIMIT_NOFILE toward the need; ConfigError when the hard limit is too low."""
    need = fds_needed(peers)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < need:
        target = need if hard == resource.RLIM_INFINITY else min(need, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    if soft != resource.RLIM_INFINITY and soft < need:
        raise ConfigError(
            [
                f"--peers / PEER_AGENT_PEERS: {peers} peers need about {need} open files, but "
                f"the limit (ulimit -n) is {hard}: raise the container runtime's nofile limit"
            ]
        )
    return need
