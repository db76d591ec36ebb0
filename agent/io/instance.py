"""This process as a peer, for both drivers: its instance, its identity, its port, its jitter."""

from __future__ import annotations

import os
import socket
import time

from agent.config.model import Config
from agent.errors import ConfigError
from agent.io.sockets import listen
from agent.protocol.instance import instance_id
from agent.protocol.wire import Identity

__all__ = ["INSTANCE", "identity_of", "listen_on_port", "uniform"]


def uniform() -> float:
    """Uniform in [0, 1), 53 bits, from the kernel: the pace's jitter draws a few a second at
    most, and ``random`` (its Mersenne Twister seeded through SHA-512) cost every start 0.5 ms
    to import."""
    return (int.from_bytes(os.urandom(7)) >> 3) / (1 << 53)


#: this process's instance: a pod that restarts says hello with a new one. Ordered by its start
#: time, then a random tie-break (``agent.protocol.instance``); clocks of different nodes need
#: only agree to within a restart's time.
INSTANCE = instance_id(time.time_ns(), int.from_bytes(os.urandom(4)))


def identity_of(config: Config) -> Identity:
    t = config.topology
    # A pod that is not one of the peers (a launcher) states N: no peer's index.
    index = t.peers if t.index is None else t.index
    return Identity(t.job, config.job_uid, index, t.peers, config.port, INSTANCE)


def listen_on_port(config: Config) -> socket.socket:
    try:
        return listen(config.listen, config.port)
    except OSError as exc:
        raise ConfigError(
            [
                f"--port / PEER_AGENT_PORT: cannot listen on port {config.port}: "
                f"{exc.strerror or exc}"
            ]
        ) from None
