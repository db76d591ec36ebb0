"""File descriptors: what N peers need, checked (and raised to the hard limit) before starting.

The coordinator holds a session per member, every agent has up to ``MAX_IN_FLIGHT`` probes
open and answers as many contacts; a limit that cannot cover that would fail mid-barrier with
EMFILE, so it is a usage error up front instead.
"""

from __future__ import annotations

import resource

from agent.errors import ConfigError

__all__ = ["MAX_IN_FLIGHT", "ensure_fd_limit", "fds_needed", "max_contacts"]

MAX_IN_FLIGHT = 256  # probes at a time
_BASE = 64  # the listener, DNS sockets, stdio, health server, slack


def max_contacts(peers: int) -> int:
    """Incoming connections served at once: every peer's probe and session, with room to spare.
    Beyond it a connection is closed at once, so a flood cannot exhaust the descriptors."""
    return 2 * peers + 128


def fds_needed(peers: int) -> int:
    return _BASE + MAX_IN_FLIGHT + max_contacts(peers)


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
