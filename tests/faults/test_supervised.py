"""A bug in any handler of what a remote sends (an incoming contact, a barrier session, a probe
worker, a health request) costs that one connection: it is reported once with the peer's
address, counted, and the agent lives on to pass the barrier. Bugs are injected by patching the
handler to raise once; everything else is real (agents, sockets, DNS on loopback).
"""

from __future__ import annotations

import errno
import functools
import http.client
import socket
from collections.abc import Callable
from typing import Any

import anyio
import pytest

from agent.commands import health
from agent.core.log import LogLine
from agent.io import contacts, listener
from agent.io.channel import server_handshake
from agent.io.contacts import Contacts
from agent.io.sessions import Sessions
from agent.io.supervisor import Supervisor
from tests.faults.conftest import (
    AgentProcess,
    Job,
    Record,
    agent_argv,
    all_done,
    released,
)
from tests.support.faultdns import FaultDNS

pytestmark = [pytest.mark.usefixtures("fast_progress"), pytest.mark.timeout(30)]


class Injected(RuntimeError):
    """The bug: raised once by the patched handler."""


def _once(real: Callable[..., Any], when: Callable[..., bool] = lambda *a, **k: True) -> Any:
    """``real``, except that its first call for which ``when`` holds raises Injected."""
    raised = False

    async def patched(*args: Any, **kwargs: Any) -> Any:
        nonlocal raised
        if not raised and when(*args, **kwargs):
            raised = True
            raise Injected("injected \x1b[31mbug\nforged line")
        return await real(*args, **kwargs)

    return patched


HANDLERS: dict[str, Callable[[pytest.MonkeyPatch], None]] = {
    "incoming contact": lambda mp: mp.setattr(
        contacts, "server_handshake", _once(server_handshake)
    ),
    "coordinator's session": lambda mp: mp.setattr(
        Sessions, "carry", _once(Sessions.carry, lambda *a, dialled, **_: not dialled)
    ),
    "member's dial": lambda mp: mp.setattr(
        Sessions, "dial_coordinator", _once(Sessions.dial_coordinator)
    ),
    "attempt by name": lambda mp: mp.setattr(Contacts, "attempt", _once(Contacts.attempt)),
    "bulk round": lambda mp: mp.setattr(Contacts, "sweep", _once(Contacts.sweep)),
    "probe worker": lambda mp: mp.setattr(Contacts, "probe_address", _once(Contacts.probe_address)),
}


@pytest.mark.parametrize("handler", list(HANDLERS))
@pytest.mark.asyncio
async def test_a_bug_in_a_handler_costs_its_connection_and_the_barrier_passes(
    fault_dns: FaultDNS, monkeypatch: pytest.MonkeyPatch, record: Record, handler: str
) -> None:
    """Two agents; the handler raises once. The bug is reported once, escaped, with the
    peer's address; both agents live and the barrier passes."""
    HANDLERS[handler](monkeypatch)
    job = Job(fault_dns, 2)
    job.publish()

    async with anyio.create_task_group() as tg:
        pods = [job.start(tg, i) for i in range(2)]
        await all_done(pods)
    assert released(pods), [p.error for p in pods]
    bugs = [e for p in pods for e in p.events if e.kind == "bug"]
    assert len(bugs) == 1, [e.message for p in pods for e in p.events]
    [bug] = bugs
    assert "Injected: injected \\x1b[31mbug\\nforged line" in bug.message
    assert bug.message.isprintable()
    # a connection's bug names its address; a task about a DNS name (attempt, round, dial) it
    peer = bug.fields["peer"]
    assert peer.startswith((f"127.0.{job.net}.", "example-job", "headless-svc")), bug.fields
    record(tries=1)


@pytest.mark.asyncio
async def test_a_bug_in_a_health_request_costs_its_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The health server's request handler raises once: that client's connection is closed,
    the bug reported with its address, and the next request is answered."""
    monkeypatch.setattr(health, "_answer", _once(health._answer))
    events: list[LogLine] = []
    supervisor = Supervisor(events.append)

    def get(port: int) -> int:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            connection.request("GET", "/readyz")
            return connection.getresponse().status
        finally:
            connection.close()

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    answers: list[int | str] = []
    async with anyio.create_task_group() as tg:
        serve = functools.partial(health.serve_health, supervisor=supervisor)
        await tg.start(serve, "127.0.0.1", port, lambda: True)
        for _ in range(2):
            try:
                answers.append(await anyio.to_thread.run_sync(get, port))
            except (http.client.HTTPException, OSError) as exc:
                answers.append(type(exc).__name__)
        tg.cancel_scope.cancel()
    assert isinstance(answers[0], str) and answers[1] == 200, answers  # closed (or reset)
    assert supervisor.bugs == 1
    [bug] = events
    assert "a health handler failed for 127.0.0.1: Injected" in bug.message


class _Flaky(socket.socket):
    """A real listening socket whose accept() first fails with each of ``errors``."""

    errors: list[int]

    def accept(self) -> tuple[socket.socket, Any]:
        if self.errors:
            code = self.errors.pop(0)
            raise OSError(code, f"injected {errno.errorcode[code]}")
        return super().accept()


#: what accept(2) can fail with: errors of the one connection, and the system's resources
ACCEPT_ERRORS = [
    errno.EMFILE,
    errno.ENFILE,
    errno.ENOBUFS,
    errno.ENOMEM,
    errno.EPROTO,
    errno.ECONNABORTED,
    errno.EPERM,
    errno.ENETUNREACH,
    errno.EINTR,
    errno.EMFILE,
]


@pytest.mark.asyncio
async def test_accept_survives_every_error(record: Record) -> None:
    """accept() fails with EMFILE, ENFILE, ENOBUFS, ENOMEM (the system's resources: reported,
    retried after a pause) and EPROTO, ECONNABORTED, EPERM, ENETUNREACH, EINTR (the one
    connection's own); listener.serve goes on, and the connection waiting in the backlog is
    served."""
    events: list[LogLine] = []
    supervisor = Supervisor(events.append, every=0.0)
    served = anyio.Event()

    async def handler(stream: Any) -> None:
        async with stream:
            await stream.send(b"served\n")
        served.set()

    real = listener.listen("127.0.0.1", 0)
    sock = _Flaky(real.family, real.type, fileno=real.detach())
    sock.errors = list(ACCEPT_ERRORS)
    with sock:
        async with anyio.create_task_group() as tg:
            tg.start_soon(functools.partial(listener.serve, supervisor=supervisor), sock, handler)
            client = await anyio.connect_tcp("127.0.0.1", sock.getsockname()[1])
            async with client:
                with anyio.fail_after(10):
                    await served.wait()
                    got = await client.receive()
            tg.cancel_scope.cancel()
    assert got == b"served\n"
    failures = [e.message for e in events if e.kind == "failure"]
    assert len(failures) == 5, failures  # EMFILE twice, ENFILE, ENOBUFS, ENOMEM
    assert failures[0] == "accepting a contact connection failed: injected EMFILE; retrying"
    assert supervisor.bugs == 0
    record(tries=len(ACCEPT_ERRORS))


_PATCHED_AGENT = """
import importlib, sys
module = importlib.import_module(sys.argv[1])
real = getattr(module, sys.argv[2])
calls = 0
async def failing_once(*args, **kwargs):
    global calls
    calls += 1
    if calls == 1:
        raise RuntimeError("injected")
    return await real(*args, **kwargs)
setattr(module, sys.argv[2], failing_once)
from agent.commands.cli import main
sys.exit(main(sys.argv[3:]))
"""


def _patched(module: str, name: str, argv: list[str]) -> AgentProcess:
    """An agent process whose ``module.name`` (a coroutine function) raises on its first call."""
    return AgentProcess([module, name, *argv], python_args=["-c", _PATCHED_AGENT])


#: where each driver's contact handler calls the handshake (the patch goes there)
_HANDSHAKE_CALLED_IN = {"anyio": "agent.io.contacts", "selectors": "agent.io.sync.peers"}


@pytest.mark.parametrize("driver", sorted(_HANDSHAKE_CALLED_IN))
def test_the_count_of_bugs_is_reported_at_exit(
    fault_dns: FaultDNS, processes: list[AgentProcess], driver: str
) -> None:
    """A `wait` process whose first incoming contact fails with a bug passes the barrier, exits
    0, and its last line counts the bug, on either driver."""
    job = Job(fault_dns, 2)
    job.publish()
    argv = agent_argv(job, "wait", 0, "--driver", driver)
    patched = _patched(_HANDSHAKE_CALLED_IN[driver], "server_handshake", argv)
    other = AgentProcess(agent_argv(job, "wait", 1))
    processes.extend([patched, other])
    assert other.finish() == 0, other.stderr
    assert patched.finish() == 0, patched.stderr
    assert "bug: a contact handler failed for 127.0." in patched.stderr
    last = patched.stderr.strip().splitlines()[-1]
    assert last.startswith("peer-agent: warning: 1 connection handler(s) failed with a bug"), last


def test_a_bug_in_a_sidecars_health_request(
    fault_dns: FaultDNS, processes: list[AgentProcess]
) -> None:
    """A sidecar whose first health request fails with a bug: that request's connection is
    closed, the next /readyz is 200, and SIGTERM ends it with 0 and the count of bugs."""
    job = Job(fault_dns, 1)
    job.publish()
    sidecar = _patched("agent.commands.health", "_answer", agent_argv(job, "sidecar", 0))
    processes.append(sidecar)
    sidecar.wait_line("serving /readyz")
    answers: list[int | str] = []
    for _ in range(2):
        connection = http.client.HTTPConnection(job.address(0), job.port + 1, timeout=5)
        try:
            connection.request("GET", "/readyz")
            answers.append(connection.getresponse().status)
        except (http.client.HTTPException, OSError) as exc:
            answers.append(type(exc).__name__)
        finally:
            connection.close()
    assert isinstance(answers[0], str) and answers[1] == 200, answers  # closed (or reset)
    assert sidecar.stop() == 0, sidecar.stderr
    assert "bug: a health handler failed for 127.0." in sidecar.stderr
    last = sidecar.stderr.strip().splitlines()[-1]
    assert last.startswith("peer-agent: warning: 1 connection handler(s) failed with a bug"), last
