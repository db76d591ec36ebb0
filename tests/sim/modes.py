"""What each mode does around the barrier, in the simulated cluster (node.py, cluster.py), as
the commands do it on one shared port (``agent.io.mux``):

- ``wait``: the init container exits at the end of its wait; its pod completes later;
- ``run``: the agent execs the workload: its port closes, the pod runs the workload, then
  completes;
- ``sidecar``: the released start barrier keeps serving (a pod restarted later passes at once);
- ``exit`` (``run --exit-barrier``): the start barrier keeps serving while the workload runs;
  when it ends, the exit barrier (``agent.commands.leave.exit_identity``: the same process in
  barrier ``exit``, with the workload's code) begins on the same port, and the process exits
  once it ends;
- ``named`` (a sidecar with named barriers): once the start barrier has passed, each pod's
  clients ask for the barrier names at times of their own; each name is one more instance
  (``agent.commands.named.named_identity``) on the same port, kept serving once released.

Every instance is the shipped core; a hello reaches the instance it names by the mux's own rule
(``agent.protocol.routing.route``, in ``Pod.target``).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import TYPE_CHECKING

from agent.commands.leave import exit_identity
from agent.commands.named import named_identity
from agent.config.model import Config, Outputs
from agent.config.parse import build_config
from agent.core.effects import Released
from agent.protocol.wire import EXIT_BARRIER, START_BARRIER, Identity
from agent.topology.podfiles import PodFacts

if TYPE_CHECKING:
    from tests.sim.node import Node

__all__ = ["MODES", "after_wait", "ask", "config_for", "heard", "stays_for_acks"]

MODES = ("wait", "run", "sidecar", "exit", "named")
_COMMAND = {"wait": "wait", "run": "run", "sidecar": "sidecar", "exit": "run", "named": "sidecar"}
#: modes whose start barrier keeps serving after its release (``serve_and_wait`` is given an
#: ``after_release``): they finish at the verdict, without lingering for acks
_SERVES_ON = ("sidecar", "exit", "named")


def config_for(
    mode: str, me: Identity, probe: str, degree: int | None = None, led_by: int | None = None
) -> Config:
    """The start barrier's configuration of a pod of this mode, as its flags would give it
    (``degree``: ``--reach sparse --reach-degree``; None: ``--reach all``; ``led_by``:
    ``--exit-led-by``, mode ``exit`` only)."""
    led = {"exit_led_by": str(led_by)} if led_by is not None else {}
    return build_config(
        _COMMAND[mode],
        {
            "peers": str(me.peers),
            "index": str(me.index),
            "job_name": me.job,
            "service": "svc",
            "namespace": "ns",
            "port": str(me.port),
            "job_uid": me.uid,
            "timeout": "0",
            "probe": probe,
        }
        | ({"exit_barrier": "true", "exit_timeout": "0", **led} if mode == "exit" else {})
        | ({"reach": "sparse", "reach_degree": str(degree)} if degree else {"reach": "all"}),
        PodFacts(hostname=f"{me.job}-{me.index}"),
    )


def stays_for_acks(mode: str) -> bool:
    return mode not in _SERVES_ON


def after_wait(node: Node) -> None:
    """``node``'s wait has ended (Finish or Fail): what its process does next."""
    c, released = node.cluster, isinstance(node.verdict, Released)
    if node.me.barrier not in (START_BARRIER, EXIT_BARRIER):  # a named barrier
        if released:
            node.state = "serving"
        else:
            c.kill(node, alone=True)  # its instance ends; the sidecar serves on
    elif node.me.barrier == EXIT_BARRIER or not released or node.mode == "wait":
        c.exit(node)  # the process ends
    elif node.mode == "run":
        c.exit(node, runs_for=c.workload_time(node.me.index))
    else:
        node.state = "serving"
        if node.me.barrier != START_BARRIER:
            return
        if node.mode == "exit":
            c.at(c.now + c.workload_time(node.me.index), lambda: _begin_exit(node))
        elif node.mode == "named":
            for name in c.names:
                asks = c.now + c.asks_after(node.me.index, name)
                c.at(asks, functools.partial(ask, node, name))


def _begin_exit(start: Node) -> None:
    """The workload has ended: the exit barrier begins, with its code (``_leave_together``)."""
    me = exit_identity(start.me, start.cluster.exit_code(start.me.index))
    if start.alive and start.pod.target(me) in (None, start):  # (stopped by the leader: once)
        config = start.agent.config
        exit_config = dataclasses.replace(config, timeout=config.exit_timeout, outputs=Outputs())
        start.cluster.begin_instance(start, me, exit_config, stays_for_acks=True)


def ask(start: Node, name: str) -> None:
    """A client of the pod asks for ``name`` (``NamedBarriers._serve``), with no deadline;
    while an instance of it runs here, the client waits for that one."""
    me = named_identity(start.me, name)
    if start.alive and start.pod.target(me) in (None, start):  # else it serves it already
        named_config = dataclasses.replace(start.agent.config, timeout=None, outputs=Outputs())
        start.cluster.begin_instance(start, me, named_config, stays_for_acks=False)


def heard(server: Node, src: Node) -> None:
    """``server`` heard ``src``'s hello: with ``--exit-led-by I``, pod I's exit barrier's hello
    to a pod whose workload still runs (its start barrier answers) stops that workload, and its
    exit barrier begins (``agent.commands.follow``; the follower's check of the leader is
    ``agent.core.exitlead``'s, pure-tested, not repeated here)."""
    led_by, exit_hello = server.cluster.led_by, src.me.barrier == EXIT_BARRIER
    if exit_hello and src.me.index == led_by and server.me.barrier == START_BARRIER:
        _begin_exit(server)
