"""File descriptors: what N peers need, checked (and raised to the hard limit) before starting.

Every agent has up to ``MAX_IN_FLIGHT`` probes of listed addresses open and ``PUSH_RESERVE``
more of peers that just said hello; up to one attempt by name per peer (at most
``MAX_IN_FLIGHT``) and one lookup of a claimed pod's name per index a held contact claims (at
most ``LOOKUPS``), each one socket at a time; and it serves up to ``MAX_HANDSHAKING`` incoming
contacts still in their handshake. The coordinator also holds one session per member (a session
is never dropped for a bound), counted or held, and up to ``HELD.total`` more held sessions from
addresses DNS does not list, for the whole process however many barriers it serves
(``agent.core.heldshare``). A limit that cannot cover that would fail mid-barrier with EMFILE,
so it is a usage error up front instead.

A sidecar also serves its health port: its connections without a whole request yet, answered
ones still closing, and the clients waiting in named barriers (``health``: the sidecar counts
them, ``agent.commands.sidecar``). They are not needed to start: a limit that covers one
barrier but not them is said at start, as fewer named barriers covered.

Each more barrier on the port (a sidecar's named barriers, the exit barrier) holds a session
per member of its own, one lookup at a time per pod a contact claims, and, while it looks for
its peers, about one probe or attempt per peer (it probes only addresses DNS gives). A sidecar
raises its limit to cover all of them where the hard limit allows; where it does not, fewer
named barriers than ``MAX_NAMES`` are covered at once, and the sidecar says so at start.
"""

from __future__ import annotations

import resource

from agent.core.admission import SIGHTED
from agent.core.heldshare import HELD
from agent.errors import ConfigError

__all__ = ["MAX_HANDSHAKING", "MAX_IN_FLIGHT", "PUSH_RESERVE", "ensure_fd_limit", "fds_needed"]

MAX_IN_FLIGHT = 256  # probes at a time (and as many attempts by name)
PUSH_RESERVE = 32  # probes only for peers that said hello, beyond MAX_IN_FLIGHT
#: incoming contacts in their handshake at once (peers' probes, sessions being opened); beyond
#: it the oldest of the address holding the most is dropped, so a flood cannot exhaust the
#: descriptors nor, from a few addresses, crowd real peers out (``agent.core.fairshare``)
MAX_HANDSHAKING = 256
#: lookups at once: one per index claimed by what waits to be vouched for
LOOKUPS = HELD.total + SIGHTED.total
_BASE = 64  # the listener, DNS sockets, stdio, health server, slack
_REPLACED = 128  # sessions of members that reconnected, until the loop closes the old one
_PER_BARRIER = 3  # each more barrier, per peer: a session, a probe or attempt, a lookup


def fds_needed(peers: int, barriers: int = 1, health: int = 0) -> int:
    """3 peers need 1,001 (within the common 1,024); 10,001 peers 11,761; each more barrier on
    the port (``barriers``) a session, a probe and a lookup per peer more; a health port's
    connections (``health``) on top."""
    outgoing = MAX_IN_FLIGHT + PUSH_RESERVE + min(MAX_IN_FLIGHT, peers) + min(LOOKUPS, peers)
    incoming = MAX_HANDSHAKING + HELD.total + peers + _REPLACED
    return _BASE + outgoing + incoming + (barriers - 1) * _PER_BARRIER * peers + health


def barriers_covered(peers: int, limit: int, health: int = 0) -> int:
    """How many barriers on one port ``limit`` open files cover, with ``health`` of them kept
    for a health port's connections (0: not even one)."""
    base = fds_needed(peers, health=health)
    if limit < base:
        return 0
    return 1 + (limit - base) // (_PER_BARRIER * peers)


def ensure_fd_limit(peers: int, barriers: int = 1, health: int = 0) -> int:
    """Raise the soft RLIMIT_NOFILE toward what ``barriers`` and ``health`` connections of a
    health port need, as far as the hard limit allows; ConfigError when it cannot cover one
    barrier. The limit now (a large number for none)."""
    need = fds_needed(peers)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 2**62
    wanted = fds_needed(peers, barriers, health)
    if soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        if target > soft:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
    if soft < need:
        raise ConfigError(
            [
                f"--peers / PEER_AGENT_PEERS: {peers} peers need about {need} open files, but "
                f"the limit (ulimit -n) is {hard}: raise the container runtime's nofile limit"
            ]
        )
    return soft
