"""Who counts without a token, when contacts come from addresses DNS does not list (issue 21,
holes 1, 3, 5, 7, 9 and 14): real agent processes on loopback, a DNS server for each view of
the cluster, outsiders speaking the wire from addresses of their own.

What is held, kept or remembered for a party DNS has not vouched for is bounded per claimed
index and per source address, dropped once it can no longer count, and re-checked by a timer
in every mode and with every probe kind (``agent.core.admission``).
"""

from __future__ import annotations

import re
import resource
import selectors
import socket
import time

import pytest

from agent.io.runner import INSTANCE
from agent.protocol.wire import Hello, Identity, Role, encode
from tests.faults.conftest import AgentProcess, Job, agent_argv, wait_port
from tests.support.faultdns import FaultDNS

pytestmark = pytest.mark.timeout(120)

#: job.address(OUTSIDER): an address of the job's loopback net that DNS never lists
OUTSIDER = 9
#: held sessions kept claiming one pod (``agent.core.admission.HELD``, docs/security.md)
HELD_PER_INDEX = 4


def _identity(job: Job, index: int, instance: str = INSTANCE, name: str = "") -> Identity:
    return Identity(name or job.job, job.uid, index, job.peers, job.port, instance)


def _newest() -> str:
    """An instance id of this version's shape that no real process's beats: all digits f."""
    return re.sub("[0-9a-f]", "f", INSTANCE)


def _say_hello(job: Job, to: int, source: str, who: Identity) -> None:
    """One probe's hello to pod ``to`` from ``source``, its reply read, then closed."""
    address = (job.address(to), job.port)
    with socket.create_connection(address, timeout=10, source_address=(source, 0)) as conn:
        conn.sendall(encode(Hello(who, Role.PROBE, "ab" * 16)))
        assert b'"t":"hello"' in conn.recv(4096)


def _argv(job: Job, command: str, i: int, *extra: str, at: str = "") -> list[str]:
    """Pod ``i``'s command line with the job's timeout; its agent listening (and dialling)
    from ``at`` if given."""
    argv = agent_argv(job, command, i, "--timeout", job.timeout, *extra)
    if at:
        argv[argv.index("--listen") + 1] = at
    return argv


def _start(processes: list[AgentProcess], argv: list[str], **popen: object) -> AgentProcess:
    agent = AgentProcess(argv, **popen)  # type: ignore[arg-type]
    processes.append(agent)
    return agent


# --- hole 1: held member sessions have a bound ----------------------------------------------------
def _nofile_1024() -> None:
    """A usual container's limit of open files, hard as well: 1024."""
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))


def _member_flood(job: Job, count: int, sources: list[str]) -> list[socket.socket]:
    """Member sessions to pod 0 from ``sources`` (in turn), addresses DNS does not list, each
    a valid hello claiming index 1 or 2 (in turn), each answered; until ``count``, or until
    the coordinator answers no more."""
    hellos = [encode(Hello(_identity(job, i), Role.MEMBER, "ab" * 16)) for i in (1, 2)]
    conns: list[socket.socket] = []
    for n in range(count):
        source = (sources[n % len(sources)], 0)
        conn = socket.create_connection((job.address(0), job.port), 5, source)
        conns.append(conn)
        conn.sendall(hellos[n % 2])
        try:
            conn.recv(4096)
        except TimeoutError:
            break  # it accepts no more connections: out of descriptors
    return conns


def _open_after(conns: list[socket.socket], most: int, settle: float = 10.0) -> int:
    """How many of ``conns`` the server still holds open once at most ``most`` are (or
    ``settle`` seconds have passed): a closed one reads EOF or a reset."""
    open_ = set(conns)
    with selectors.DefaultSelector() as sel:
        for conn in conns:
            conn.setblocking(False)
            sel.register(conn, selectors.EVENT_READ)
        deadline = time.monotonic() + settle
        while len(open_) > most and (left := deadline - time.monotonic()) > 0:
            for key, _ in sel.select(left):
                ready = key.fileobj
                assert isinstance(ready, socket.socket)
                try:
                    if ready.recv(4096):
                        continue  # the reply hello
                except BlockingIOError:
                    continue
                except OSError:
                    pass
                open_.discard(ready)
                sel.unregister(ready)
    return len(open_)


def test_a_flood_of_held_member_sessions_neither_exhausts_files_nor_stops_the_barrier(
    fault_dns: FaultDNS, processes: list[AgentProcess]
) -> None:
    """Pods 0 and 1 wait for pod 2; pod 0 (the coordinator) may open 1024 files, no more. A
    process with 7 addresses DNS does not list opens 1,100 member sessions to it, each a valid
    hello claiming index 1 or 2. The coordinator holds at most 4 claiming each index, closes
    the rest, and says so once; pod 1's own session is not touched. When the real pod 2
    comes, all three pass, exit 0. (Every session was held: at about 1,000 the coordinator ran
    out of files, and all three exited 3.)"""
    job = Job(fault_dns, 3, timeout="25s")
    job.publish(0, 1)
    coordinator = _start(processes, _argv(job, "wait", 0), preexec_fn=_nofile_1024)
    member = _start(processes, _argv(job, "wait", 1))
    wait_port(job, 0)
    member.wait_line(f"reached {job.fqdn(0)}")
    flood = _member_flood(job, 1100, [job.address(OUTSIDER + k) for k in range(7)])
    try:
        held = _open_after(flood, 2 * HELD_PER_INDEX)
        job.publish(2)
        late = _start(processes, _argv(job, "wait", 2))
        codes = [agent.finish() for agent in (coordinator, member, late)]
    finally:
        for conn in flood:
            conn.close()
    assert codes == [0, 0, 0], coordinator.stderr
    assert len(flood) == 1100 and held <= 2 * HELD_PER_INDEX, (len(flood), held)
    assert coordinator.stderr.count("closing the oldest") == 1, coordinator.stderr
    assert _sessions(member.stderr) == 1, member.stderr


def _sessions(log: str) -> int:
    """The sessions count of the release line (``… 1 sessions, …``)."""
    line = next(line for line in log.splitlines() if "barrier released" in line)
    for part in line.rsplit("(", 1)[1].rstrip(")\n").split(", "):
        number, _, name = part.partition(" ")
        if name == "sessions":
            return int(number)
    return 0


# --- hole 3: every probe kind re-checks a held session by a timer ---------------------------------
def _listeners(addresses: list[str], port: int) -> list[socket.socket]:
    """What ``--probe tcp:PORT`` connects to: the workload's port, open at each address."""
    out = []
    for address in addresses:
        sock = socket.create_server((address, port))
        out.append(sock)
    return out


@pytest.mark.parametrize("kind", ["dns", "icmp", "tcp:PORT"])
def test_a_member_replaced_at_a_new_address_before_the_release_is_counted(
    fault_dns: FaultDNS, processes: list[AgentProcess], kind: str
) -> None:
    """Probes that cannot tell instances apart find each peer by its own name (no sweep of
    the Service). Pods 0 and 2 are up, pod 1 not yet; pod 2 arrives, then is replaced by a
    pod at a new address, whose session comes from there. Once pod 1 comes, all three pass:
    the coordinator asked DNS for pod 2's name again and found the new address. (It held the
    new session until the timeout, all three exiting 3, pod 0 saying "barrier: not
    connected".)"""
    job = Job(fault_dns, 3, timeout="20s")
    new = job.address(5)
    port = job.port + 1  # free: a wait-mode job has no health port
    probe = kind.replace("PORT", str(port))
    opened = _listeners([job.address(i) for i in range(3)] + [new], port) if "tcp" in kind else []
    try:
        job.publish(0, 2)
        coordinator = _start(processes, _argv(job, "wait", 0, "--probe", probe))
        old = _start(processes, _argv(job, "wait", 2, "--probe", probe))
        coordinator.wait_line(f"reached {job.fqdn(2)}")
        old.stop()
        job.move(2, new)
        replaced = _start(processes, _argv(job, "wait", 2, "--probe", probe, at=new))
        replaced.wait_line(f"reached {job.fqdn(0)}")
        job.publish(1)
        member = _start(processes, _argv(job, "wait", 1, "--probe", probe))
        codes = [agent.finish() for agent in (coordinator, member, replaced)]
    finally:
        for sock in opened:
            sock.close()
    assert codes == [0, 0, 0], coordinator.stderr


# --- hole 5: a held session counts with its latest arrival ----------------------------------------
def test_a_held_member_counts_with_its_latest_arrival(
    fault_dns: FaultDNS, processes: list[AgentProcess]
) -> None:
    """The coordinator's DNS lags (a CoreDNS replica behind the others): it lists pods 0 and 2
    but not pod 1, whose session it holds. Pod 2 restarts four times; pod 1 reaches each new
    instance and arrives again each time (five arrivals on the held session). When the
    coordinator's DNS lists pod 1, its latest arrival counts and all three pass. (Only the
    first four were kept: the coordinator saw an old view, pod 1 never sent again, all exited
    3.)"""
    job = Job(fault_dns, 3, timeout="30s")
    with FaultDNS() as lagging:
        behind = Job(lagging, 3, timeout="30s", net=job.net, port=job.port)
        job.publish()
        behind.publish(0, 2)
        coordinator = _start(processes, _argv(behind, "wait", 0))
        member = _start(processes, _argv(job, "wait", 1))
        pod2 = _start(processes, _argv(job, "wait", 2))
        member.wait_line("reached all 3 peers")
        for restarts in range(1, 5):
            pod2.stop()
            pod2 = _start(processes, _argv(job, "wait", 2))
            member.wait_line("restarted", count=restarts)
            member.wait_line("reached all 3 peers", count=restarts + 1)
        behind.publish(1)
        codes = [agent.finish() for agent in (coordinator, member, pod2)]
    assert codes == [0, 0, 0], coordinator.stderr


# --- hole 7: a claim from an unlisted address is never replayed -----------------------------------
def test_a_claim_heard_from_an_unlisted_address_is_not_replayed_once_the_address_is_reused(
    fault_dns: FaultDNS, processes: list[AgentProcess]
) -> None:
    """Pods 0 and 1 wait for pod 2. A process at the address the real pod 2 gets later (pod
    addresses are reused) says hello to both claiming to be pod 2, with an instance id newer
    than any real one's, and leaves. Then the real pod 2 comes at that address: all three pass.
    (The stored hello was replayed once DNS listed the address, the real pod 2 was taken for an
    older instance, and all three exited 3.)"""
    job = Job(fault_dns, 3, timeout="15s")
    job.publish(0, 1)
    pods = [_start(processes, _argv(job, "wait", i)) for i in (0, 1)]
    for i in (0, 1):
        wait_port(job, i)
        _say_hello(job, i, job.address(2), _identity(job, 2, _newest()))
    for pod in pods:
        pod.wait_line(f"contacts come from {job.address(2)}, which DNS does not list")
    job.publish(2)
    pods.append(_start(processes, _argv(job, "wait", 2)))
    codes = [pod.finish() for pod in pods]
    assert codes == [0, 0, 0], pods[0].stderr


# --- hole 9: a stranger's hello costs no DNS ------------------------------------------------------
def test_a_strangers_hello_makes_a_sidecar_ask_dns_nothing(
    fault_dns: FaultDNS, processes: list[AgentProcess]
) -> None:
    """Three sidecars have passed and serve on. A pod of another Job says hello to pod 1 from
    an address DNS does not list: it is never counted, so it is not kept either, and pod 1
    asks DNS nothing for it. (It was kept for ever: pod 1 asked for the Service about once a
    second for as long as it ran.)"""
    job = Job(fault_dns, 3)
    job.publish()
    sidecars = [_start(processes, _argv(job, "sidecar", i)) for i in range(3)]
    for sidecar in sidecars:
        sidecar.wait_line("serving /readyz")
    asked = fault_dns.queries(job.service)
    _say_hello(job, 1, job.address(OUTSIDER), _identity(job, 0, name="another-job"))
    assert not fault_dns.wait_for(lambda dns: dns.queries(job.service) > asked, timeout=3)
    for sidecar in sidecars:
        assert sidecar.stop() == 0, sidecar.stderr


# --- hole 14: what a waiting pod says is true -----------------------------------------------------
def test_a_held_session_is_named_as_held_not_as_missing(
    fault_dns: FaultDNS, processes: list[AgentProcess]
) -> None:
    """Pod 1's name lists one address, but its agent speaks from another (a second interface):
    the coordinator holds its session, and says so at the timeout, naming the address, instead
    of "barrier: not connected"."""
    job = Job(fault_dns, 2, timeout="8s")
    job.publish()
    elsewhere = job.address(6)
    coordinator = _start(processes, _argv(job, "wait", 0, "--probe", "dns"))
    member = _start(
        processes, _argv(job, "wait", 1, "--probe", "dns", "--timeout", "60s", at=elsewhere)
    )
    coordinator.wait_line(f"contacts come from {elsewhere}, which DNS does not list")
    assert coordinator.finish() == 3
    member.stop()
    [line] = [line for line in coordinator.stderr.splitlines() if f"{job.fqdn(1)}:" in line]
    assert "not connected" not in line, coordinator.stderr
    assert f"connected from {elsewhere}, which DNS does not list" in line, coordinator.stderr


def test_a_member_that_reached_a_restarted_peer_again_says_it_waits_for_the_verdict(
    fault_dns: FaultDNS, processes: list[AgentProcess]
) -> None:
    """Pod 1 has arrived (its session held by a coordinator whose DNS never lists it); pod 2
    restarts and pod 1 reaches its new instance and arrives again. At its timeout pod 1 says it
    has arrived and waits for the verdict, not "re-reaching a restarted peer"."""
    job = Job(fault_dns, 3, timeout="30s")
    with FaultDNS() as lagging:
        behind = Job(lagging, 3, timeout="30s", net=job.net, port=job.port)
        job.publish()
        behind.publish(0, 2)
        _start(processes, _argv(behind, "wait", 0))
        member = _start(processes, _argv(job, "wait", 1, "--timeout", "6s"))
        pod2 = _start(processes, _argv(job, "wait", 2))
        member.wait_line("reached all 3 peers")
        pod2.stop()
        _start(processes, _argv(job, "wait", 2))
        member.wait_line("reached all 3 peers", count=2)
        assert member.finish() == 3
    [line] = [line for line in member.stderr.splitlines() if f"{job.fqdn(0)}:" in line]
    assert "re-reaching" not in line, member.stderr
    assert "barrier: arrived, waiting for the verdict" in line, member.stderr
