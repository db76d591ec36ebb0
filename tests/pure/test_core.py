"""The pure Agent driven directly: events in, effects out, on a hand-held clock.

Each test is a short scenario a user would notice, and none needs a network: this is the code
the runner and the in-memory cluster both drive.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

from agent.config.parse import build_config
from agent.core.agent import Agent
from agent.core.causes import Cause, Failure
from agent.core.effects import Effect, ProbeAddress, Query, Report
from agent.core.inputs import AddressProbed, Reached, Resolution, Swept, Unreached
from agent.core.timing import DEFAULT_TIMING
from agent.protocol.wire import Identity
from agent.topology.podfiles import PodFacts

pytestmark = pytest.mark.timeout(10)

#: the modules that decide; they may not touch the network, the clock, the OS or a logger
CORE = [
    *sorted(
        f"{package}.{path.stem}"
        for package in ("core", "protocol", "topology", "config")
        for path in (pathlib.Path(__file__).parents[2] / "agent" / package).glob("*.py")
    ),
    "errors",
    "exitcodes",
    "options",
    "problems",
]
FORBIDDEN = {
    "anyio",
    "dns",
    "socket",
    "os",
    "time",
    "random",
    "logging",
    "trio",
    "asyncio",
    "resource",
    "subprocess",
    "io",
    "pathlib",
}


def _agent(peers: int, index: int) -> Agent:
    config = build_config(
        "wait",
        {"peers": str(peers), "index": str(index), "service": "svc", "namespace": "ns"},
        PodFacts(hostname=f"job-{index}"),
    )
    me = Identity("job", "", index, peers, 29300, f"{index:016x}")
    return Agent(config, me=me, now=0.0, rand=lambda: 0.5)


def _reports(effects: list[Effect]) -> list[str]:
    return [e.line.message for e in effects if isinstance(e, Report)]


def test_a_pod_restarted_after_its_peers_passed_is_told_within_seconds() -> None:
    """Its peers' pods are up (DNS lists them) but their agents have left: every probe is
    refused. The first progress line says so, instead of waiting silently for --timeout."""
    agent = _agent(3, 1)
    assert Query() in agent.begin(0.0)
    listed = ("10.0.0.1", "10.0.0.2", "10.0.0.3")
    probes = agent.handle(Swept(Resolution(listed)), 0.1)
    assert {p.address for p in probes if isinstance(p, ProbeAddress)} == set(listed)
    refused = Unreached(Failure("connect to port 29300: refused", Cause.CONNECT_REFUSED))
    for address in ("10.0.0.1", "10.0.0.3"):
        agent.handle(AddressProbed(address, refused), 0.2)
    mine = Reached(index=1, instance=f"{1:016x}")
    agent.handle(AddressProbed("10.0.0.2", mine), 0.2)
    [line] = _reports(agent.poll(DEFAULT_TIMING.progress_every))
    assert "1/3 peers reached" in line
    assert "nobody listens on port 29300" in line and "only sidecar mode" in line


@pytest.mark.parametrize("name", CORE)
def test_core_modules_do_no_io(name: str) -> None:
    """Every decision is in the core, and the core cannot do I/O: no core module imports
    anyio, dns, socket, os, time, random, logging (or an event loop), even indirectly."""
    seen: set[str] = set()
    todo = [name]
    root = pathlib.Path(__file__).parents[2] / "agent"
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        tree = ast.parse((root / f"{module.replace('.', '/')}.py").read_text())
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                # a PurePath is a value: it never touches the filesystem
                pure = node.module == "pathlib" and {a.name for a in node.names} <= {"PurePath"}
                names = [] if pure else [node.module]
            for imported in names:
                top = imported.split(".")[0]
                assert top not in FORBIDDEN, f"agent.{module} imports {imported}"
                if top == "agent" and "." in imported:
                    todo.append(imported.split(".", 1)[1])
