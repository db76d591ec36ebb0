"""What the `wait` path imports: a guard, not a timer.

Every module imported costs each pod's start CPU, which a CPU limit turns into wall time (under
`limits.cpu: 100m`, 1 ms of CPU is 10 ms of waiting). The lint, health (h11), doctor and YAML
code serve other commands, the Python API other programs; dnspython's message parser serves
unusual DNS answers only. A new module-level import that pulls one of them into `wait` fails
here. What was imported is
``sys.modules`` once `main()` returns; the chain that imported a module comes from
``-X importtime`` (which does not see ``importlib.import_module``, hence not the list itself).
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.dns_stub import StubDnsServer

REPO = Path(__file__).resolve().parents[2]
ONLY_ELSEWHERE = {
    "agent.lint": "lint",
    "yaml": "lint",
    "agent.commands.health": "sidecar",
    "h11": "sidecar",
    "agent.commands.doctor": "doctor",
    "agent.io.icmp": "the icmp probe",
    "dns.message": "unusual DNS answers",
    "dns.rdatatype": "unusual DNS answers",
    "agent.commands.api": "the Python API (agent.wait, agent.barrier)",
    # (pathlib too, but the test venv's editable install imports it at every start)
    "tempfile": "output files (--hostfile, --env-file, --peers-json)",
    "random": "output files (tempfile); the pace's jitter reads os.urandom",
    "anyio.streams.buffered": "no command: agent.io.lines reads the agent's lines",
    "argparse": "help, usage errors, lint, barrier (agent.commands.words reads a plain line)",
    "gettext": "argparse",
    "agent.io.mux": "the shared port (sidecar, run --exit-barrier, named barriers)",
    "agent.topology.training_operator": "Training Operator pods",
    "agent.topology.injected": "LeaderWorkerSet and Trainer pods",
    "agent.topology.hostfile": "--peers-from and Volcano pods",
    "shutil": "output files (tempfile), help text (argparse sizes it with shutil)",
    # asyncio and anyio import ssl at the loop's start; agent.commands.lazyssl defers OpenSSL
    "_ssl": "no command: the CLI never speaks TLS",
    "datetime": "no command: a JSON log line's time comes from time.strftime",
    "_hashlib": "a token's proofs (hmac), a sparse graph's permutation (OpenSSL's hashes)",
}
# The console script's `main()`, then the modules it left imported, on stdout.
RUN = """
import json, sys
from agent.__main__ import main
code = main()  # reads sys.argv, as the console script does
print(json.dumps(sorted(sys.modules)))
sys.exit(code)
"""
_LINE = re.compile(r"import time:\s+\d+ \|\s+\d+ \|( *)(\S+)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _imports_of_a_whole_wait(
    driver: str = "auto", command: tuple[str, ...] = ("wait",)
) -> tuple[set[str], list[tuple[int, str]]]:
    """Modules imported by one pod passing its barrier alone (`--peers 1`: it resolves its own
    name and the Service, probes itself, releases, writes its files), and (depth, module) for
    each import importtime saw. (`run` execs its command: no module list, importtime's only.)"""
    fqdn = "solo-0.svc.ns.svc.cluster.local."
    with StubDnsServer({fqdn: "127.0.0.1", "svc.ns.svc.cluster.local.": "127.0.0.1"}) as dns:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PEER_AGENT_")}
        done = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", RUN, command[0],
             "--peers", "1", "--index", "0", "--hostname", "solo-0", "--service", "svc",
             "--namespace", "ns", "--dns-server", f"127.0.0.1:{dns.port}",
             "--listen", "127.0.0.1", "--port", str(_free_port()), "--timeout", "30s",
             "--log-format", "json", "--log-level", "debug", "--driver", driver, *command[1:]],
            capture_output=True, text=True, timeout=60, cwd=REPO, env=env,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert '"event": "released"' in done.stderr
    assert '"event": "driver"' in done.stderr  # which one ran is said at debug
    seen = [(len(m[1]) // 2, m[2]) for m in map(_LINE.match, done.stderr.splitlines()) if m]
    return set(json.loads(done.stdout or "[]")), seen


def _chain(imports: list[tuple[int, str]], at: int) -> str:
    """Who imported ``imports[at]``: importtime prints a module after its imports, one level
    of indentation deeper than the module that imported it."""
    depth, name = imports[at]
    chain = [name]
    for d, parent in imports[at + 1 :]:
        if d < depth:
            chain.append(parent)
            depth = d
    return " <- ".join(chain)


@pytest.mark.timeout(90)
@pytest.mark.parametrize("driver", ["anyio", "selectors"])
def test_wait_imports_nothing_that_only_other_commands_use(driver: str) -> None:
    modules, imports = _imports_of_a_whole_wait(driver)
    if driver == "anyio":  # the real path was taken
        assert {"agent.io.runner", "anyio._backends._asyncio"} <= modules
    else:
        assert "agent.io.sync.runner" in modules
    wrong = sorted(modules & ONLY_ELSEWHERE.keys())
    chains = [_chain(imports, i) for i, (_, name) in enumerate(imports) if name in wrong]
    assert not wrong, f"{wrong} imported by `wait`: " + "; ".join(chains)


#: what the selectors driver's `wait` never imports: its whole point (issue 22 item 8)
EVENT_LOOPS = ("anyio", "asyncio", "sniffio", "agent.io.runner", "agent.commands.asyncwait")


#: what only anyio (and a bug's report) needs: dataclasses brings inspect, ast, dis, tokenize
NOT_ON_THE_SELECTORS_DRIVER = ("dataclasses", "inspect", "traceback")


@pytest.mark.timeout(90)
def test_wait_on_the_selectors_driver_imports_neither_asyncio_nor_anyio() -> None:
    """`wait` with the tcp probe on the selectors driver (``--driver auto`` takes it where it
    suffices) imports no event loop library at all, nor the anyio driver's runner, nor what
    only they need (``agent.values`` defines its classes without ``dataclasses``)."""
    modules, imports = _imports_of_a_whole_wait("selectors")
    assert "agent.io.sync.runner" in modules
    wrong = sorted(
        m
        for m in modules
        if m.split(".")[0] in EVENT_LOOPS or m in EVENT_LOOPS or m in NOT_ON_THE_SELECTORS_DRIVER
    )
    chains = [_chain(imports, i) for i, (_, name) in enumerate(imports) if name in wrong]
    assert not wrong, f"{wrong} imported by `wait`: " + "; ".join(chains)


@pytest.mark.timeout(90)
def test_run_on_the_selectors_driver_imports_no_event_loop_before_its_exec() -> None:
    """`run`'s start barrier on the selectors driver, then its exec: what it restores for the
    workload (the signals Python ignores) comes without ``agent.commands.workload``, whose
    anyio (with inspect, ast, dis) only ``run --exit-barrier`` uses."""
    _, imports = _imports_of_a_whole_wait("selectors", ("run", "--", "true"))
    names = [name for _, name in imports]
    assert "agent.io.sync.runner" in names and "agent.commands.inherited" in names
    wrong = sorted({n for n in names if n.split(".")[0] in EVENT_LOOPS or n in EVENT_LOOPS})
    wrong += sorted({n for n in names if n in NOT_ON_THE_SELECTORS_DRIVER})
    chains = [_chain(imports, i) for i, (_, name) in enumerate(imports) if name in wrong]
    assert not wrong, f"{wrong} imported by `run`: " + "; ".join(chains)


# ssl deferred, then used: the real module, through the name anyio and asyncio's callers hold
DEFERRED = """
import sys
from agent.commands import lazyssl
lazyssl.defer()
import anyio, anyio.streams.tls

async def main() -> None:
    pass

anyio.run(main)
assert "_ssl" not in sys.modules, "OpenSSL loaded by the loop's start"
import ssl
context = ssl.create_default_context()
assert isinstance(context, ssl.SSLContext) and "_ssl" in sys.modules
assert sys.modules["ssl"].SSLContext is anyio.streams.tls.ssl.SSLContext
print("ok")
"""


@pytest.mark.timeout(60)
def test_ssl_is_loaded_when_used_not_when_the_loop_starts() -> None:
    done = subprocess.run(
        [sys.executable, "-c", DEFERRED], capture_output=True, text=True, timeout=50, cwd=REPO
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
