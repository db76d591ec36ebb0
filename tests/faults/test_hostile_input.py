"""Regressions for inputs that once ended an agent, each driven as real bytes into real agent
processes on loopback: the agent lives on, and the barrier still passes.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading
from collections import Counter
from collections.abc import Iterator

import pytest

from agent.commands.cli import _Printer
from agent.config.model import LogFormat
from agent.core.log import LogKind, LogLine
from agent.errors import BarrierAborted
from agent.io.runner import identity_of
from agent.protocol.wire import Hello, Identity, Role, encode
from tests.faults.conftest import AgentProcess, Job, Record, agent_argv, wait_port
from tests.support.faultdns import FaultDNS

pytestmark = pytest.mark.timeout(60)

#: ``printf '{"v":2,"t":[]}\n' | nc POD 29300`` ended any agent with TypeError (exit 1)
CRASHERS = [
    b'{"v":2,"t":[]}\n',
    b'{"v":2,"t":{}}\n',
    b'{"v":true,"t":"hello"}\n',
    b'{"v":2,"t":"hello","t":"ack"}\n',
    b'{"v":2,"t":"abort","reason":NaN}\n',
]


def _say(address: str, port: int, line: bytes) -> bytes:
    """What ``printf LINE | nc ADDRESS PORT`` does; returns what came back before the close."""
    got = b""
    with socket.create_connection((address, port), timeout=10) as sock:
        sock.sendall(line)
        sock.shutdown(socket.SHUT_WR)
        while chunk := sock.recv(4096):
            got += chunk
    return got


@pytest.mark.parametrize(
    ("command", "driver"),
    [("wait", "anyio"), ("wait", "selectors"), ("sidecar", "")],
    ids=["wait-anyio", "wait-selectors", "sidecar"],
)
def test_one_line_of_type_confused_json_ends_no_agent(
    fault_dns: FaultDNS, processes: list[AgentProcess], record: Record, command: str, driver: str
) -> None:
    """Each line is sent to both agents of a 2-pod job while pod 1 is not yet published; each
    agent closes that connection only, and once pod 1 is published the barrier passes. (The
    selectors driver left a contact it refused or could not read open, until the garbage
    collector came: the sender waited for the close.)"""
    job = Job(fault_dns, 2)
    job.publish(0)
    extra = ("--driver", driver) if driver else ()
    agents = [AgentProcess(agent_argv(job, command, i, *extra)) for i in range(2)]
    processes.extend(agents)
    for i in range(2):
        wait_port(job, i)
    for line in CRASHERS:
        for i in range(2):
            assert _say(job.address(i), job.port, line) == b""  # closed, nothing said
    for agent in agents:
        assert agent.proc.poll() is None, agent.stderr
    job.publish(1)
    for agent in agents:
        agent.wait_line("barrier released")
    for agent in agents:
        code = agent.finish() if command == "wait" else agent.stop()
        assert code == 0, agent.stderr
        assert "Traceback" not in agent.stderr and "internal error" not in agent.stderr
    record(tries=len(CRASHERS) * 2)


class _HostileCoordinator:
    """Listens where pod 0 is published: answers a probe with one of ``lines``; completes a
    member's handshake (no token), then sends one of ``lines`` in the session. Each role's
    n-th connection gets ``lines[n % len(lines)]``; ``enough`` is set once each role has
    had every line ``rounds`` times."""

    def __init__(self, job: Job, *lines: bytes, rounds: int = 2) -> None:
        self.job, self.lines, self.rounds = job, lines, rounds
        self.served: Counter[Role] = Counter()
        self.enough = threading.Event()
        self._sock = socket.create_server((job.address(0), job.port))
        self._sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> _HostileCoordinator:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)
        self._sock.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            with conn, contextlib.suppress(OSError):
                conn.settimeout(5)
                self._answer(conn)

    def _answer(self, conn: socket.socket) -> None:
        role = Role(json.loads(conn.makefile("rb").readline())["role"])
        if role is Role.MEMBER:
            me = identity_of(self.job.config(0))
            conn.sendall(encode(Hello(me, Role.REPLY, "00" * 16)))
        conn.sendall(self.lines[self.served[role] % len(self.lines)])
        self.served[role] += 1
        if min(self.served[Role.PROBE], self.served[Role.MEMBER]) >= self.rounds * len(self.lines):
            self.enough.set()


@pytest.fixture(params=CRASHERS[:2], ids=["type-list", "type-object"])
def hostile(request: pytest.FixtureRequest, fault_dns: FaultDNS) -> Iterator[_HostileCoordinator]:
    job = Job(fault_dns, 2)
    job.publish()
    with _HostileCoordinator(job, request.param) as server:
        yield server


def test_a_hostile_reply_to_a_probe_or_a_session_ends_no_agent(
    hostile: _HostileCoordinator, processes: list[AgentProcess], record: Record
) -> None:
    """Whatever listens at a listed address can answer: the decoder that reads a peer's hello
    also reads probe replies and the coordinator's messages. Pod 1 probes the impostor and holds
    sessions with it, each answered with the line; then the real pod 0 starts in its place and
    the barrier passes."""
    job = hostile.job
    member = AgentProcess(agent_argv(job, "wait", 1))
    processes.append(member)
    assert hostile.enough.wait(30), (hostile.served, member.stderr)
    assert member.proc.poll() is None, member.stderr
    hostile.__exit__()
    coordinator = AgentProcess(agent_argv(job, "wait", 0))
    processes.append(coordinator)
    for agent in (member, coordinator):
        assert agent.finish() == 0, agent.stderr
        assert "Traceback" not in agent.stderr
    record(tries=sum(hostile.served.values()))


# --- the health port ------------------------------------------------------------------------------
#: (request, what the answer starts with); b"" = closed without an answer
HTTP: dict[str, tuple[bytes, bytes]] = {
    "HEAD /livez": (b"HEAD /livez HTTP/1.1\r\nHost: x\r\n\r\n", b"HTTP/1.1 200 "),
    "HEAD /readyz": (b"HEAD /readyz HTTP/1.1\r\nHost: x\r\n\r\n", b"HTTP/1.1 200 "),
    "HEAD /nope": (b"HEAD /nope HTTP/1.1\r\nHost: x\r\n\r\n", b"HTTP/1.1 404 "),
    "OPTIONS *": (b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", b"HTTP/1.1 405 "),
    "CONNECT": (b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", b"HTTP/1.1 405 "),
    "TRACE": (b"TRACE /livez HTTP/1.1\r\nHost: x\r\n\r\n", b"HTTP/1.1 405 "),
    "unknown method": (b"BREW /livez HTTP/1.1\r\nHost: x\r\n\r\n", b"HTTP/1.1 405 "),
    "POST with a body": (
        b"POST /readyz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
        b"HTTP/1.1 405 ",
    ),
    "Upgrade": (
        b"GET /livez HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
        b"HTTP/1.1 200 ",
    ),
    "Expect: 100-continue": (
        b"PUT /livez HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\nExpect: 100-continue\r\n\r\n",
        b"HTTP/1.1 405 ",
    ),
    "pipelined": (
        b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\nHEAD /readyz HTTP/1.1\r\nHost: x\r\n\r\n",
        b"HTTP/1.1 200 ",
    ),
    "chunked": (
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        b"HTTP/1.1 405 ",
    ),
    "HTTP/1.0": (b"GET /readyz HTTP/1.0\r\n\r\n", b"HTTP/1.1 200 "),
    "HTTP/0.9": (b"GET /readyz\r\n\r\n", b"HTTP/1.1 400 "),
    "no Host": (b"GET /livez HTTP/1.1\r\n\r\n", b"HTTP/1.1 400 "),
    "oversize header": (
        b"GET /livez HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 20000 + b"\r\n\r\n",
        b"HTTP/1.1 431 ",
    ),
    "TLS hello": (b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03", b"HTTP/1.1 400 "),
    "half-closed at once": (b"", b""),
    "half a request": (b"GET /livez HTTP/1.1\r\nHo", b""),
}


def test_any_http_request_to_the_health_port_ends_no_sidecar(
    fault_dns: FaultDNS, processes: list[AgentProcess], record: Record
) -> None:
    """``HEAD /livez`` ended a sidecar (h11 LocalProtocolError: a body after HEAD). Every method,
    Upgrade, Expect, pipelined and chunked requests, HTTP/1.0 and 0.9, an oversize header, TLS,
    and clients that close half-way, each sent and half-closed: each gets its answer (HEAD
    without a body) or a close, the sidecar lives on, /readyz still answers 200, and SIGTERM
    ends it with 0."""
    job = Job(fault_dns, 1)
    job.publish()
    agent = AgentProcess(agent_argv(job, "sidecar", 0))
    processes.append(agent)
    agent.wait_line("serving /readyz")
    health = job.port + 1
    for name, (request, expected) in HTTP.items():
        answer = _say(job.address(0), health, request)
        assert answer.startswith(expected), (name, answer[:200])
        if name.startswith("HEAD"):
            assert answer.endswith(b"\r\n\r\n"), (name, answer)  # no body after HEAD
        assert agent.proc.poll() is None, (name, agent.stderr)
    connection = http.client.HTTPConnection(job.address(0), health, timeout=5)
    connection.request("GET", "/readyz")
    assert connection.getresponse().status == 200
    connection.close()
    assert agent.stop() == 0, agent.stderr
    assert "Traceback" not in agent.stderr and "bug" not in agent.stderr, agent.stderr
    record(tries=len(HTTP))


# --- log injection ---------------------------------------------------------------------------
_FORGED = "peer-agent: info: barrier released: all peers arrived"


def _hello_line(**identity: object) -> bytes:
    body = json.loads(encode(Hello(Identity("example-job", "", 0, 2, 1), Role.REPLY, "00" * 16)))
    body["identity"].update(identity)
    return json.dumps(body).encode() + b"\n"


#: a peer's text with a forged line, a terminal escape, a bidi override: refused as it comes
INJECTIONS = [
    json.dumps({"v": 2, "t": "refuse", "reason": f"no\n{_FORGED}"}).encode() + b"\n",
    json.dumps({"v": 2, "t": "abort", "reason": f"\x1b[2J\x1b[H{_FORGED}"}).encode() + b"\n",
    _hello_line(uid=f"u\r\n{_FORGED}"),
    _hello_line(job=f"example-job\u202e{_FORGED}"),
]


@pytest.mark.parametrize("log_format", list(LogFormat))
def test_a_peers_text_never_reaches_the_log_raw(
    fault_dns: FaultDNS, processes: list[AgentProcess], record: Record, log_format: LogFormat
) -> None:
    """An impostor at pod 0's address answers pod 1's probes and sessions with a Refuse or an
    Abort whose reason carries a newline, a terminal escape or a bidi override, and with hellos
    whose uid or job do: once refused, a Refuse/Abort reason and an identity-mismatch uid
    reached the text log raw. Pod 1 runs until its timeout: every line it writes is one
    printable line (text) or one JSON object, and no line is forged."""
    job = Job(fault_dns, 2)
    job.publish()
    with _HostileCoordinator(job, *INJECTIONS, rounds=1) as hostile:
        argv = agent_argv(job, "wait", 1, "--log-format", log_format, "--timeout", "10s")
        member = AgentProcess(argv)
        processes.append(member)
        assert hostile.enough.wait(30), (hostile.served, member.stderr)
        assert member.finish() == 3, member.stderr  # the impostor is never counted
    lines = member.stderr.splitlines()
    assert any("bad field" in line for line in lines), member.stderr  # what was refused, said
    for line in lines:
        assert line.isprintable(), repr(line)
        if log_format is LogFormat.JSON:
            assert json.loads(line)["msg"]
        else:
            assert line.startswith("peer-agent: ") and _FORGED not in line, line
    record(tries=sum(hostile.served.values()))


def test_the_text_printer_escapes_what_it_prints(capsys: pytest.CaptureFixture[str]) -> None:
    """Defense in depth behind the decoder: the CLI's text log prints one line per event."""
    printer = _Printer(LogFormat.TEXT)
    printer(LogLine(LogKind.CONTACT_REFUSED, f"refused: x\n{_FORGED}\x1b[2J"))
    printer.error(BarrierAborted(f"refused by the coordinator: \r{_FORGED}"))
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "peer-agent: info: refused: x\\npeer-agent: info: barrier released: all peers "
        "arrived\\x1b[2J",
        "peer-agent: error: refused by the coordinator: \\rpeer-agent: info: barrier released: "
        "all peers arrived",
    ]
