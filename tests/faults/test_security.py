"""What a client that reaches the port can and cannot do: no token leaks, no replayed or reflected
proof passes, no pod of another job is counted, no odd hello brings the agent down.
"""

from __future__ import annotations

import ast
import hmac
import json
import secrets
import stat
from dataclasses import replace
from pathlib import Path

import anyio
import anyio.abc
import pytest

from agent.config.model import Config
from agent.config.parse import build_config
from agent.errors import WireError
from agent.io.podfacts import read_pod_facts
from agent.io.runner import identity_of, serve_and_wait
from agent.protocol.handshake import proof_for, proof_ok
from agent.protocol.wire import Hello, Identity, Proof, Refuse, Role, decode, encode
from tests.faults.conftest import (
    JOB,
    ROOT,
    AgentProcess,
    Job,
    Record,
    agent_argv,
    agent_deps,
    all_done,
    released,
)
from tests.faults.rawpeer import Outcomes, RawClient, bare_server
from tests.support.faultdns import FaultDNS

pytestmark = [pytest.mark.usefixtures("fast_progress"), pytest.mark.timeout(30)]
TOKEN = b"correct horse battery staple"
SERVER = Identity(JOB, "uid-1", 0, 3, 29300)
CLIENT = Identity(JOB, "uid-1", 1, 3, 29300)


# --- the token: compared in constant time, never printed ------------------------------------------
def test_proofs_are_compared_with_hmac_compare_digest(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every proof check goes through hmac.compare_digest (constant time), and no code compares
    a proof or token with == or !=."""
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    good = proof_for(TOKEN, role="client", their_nonce="s", my_nonce="c", me=CLIENT)
    for proof, ok in ((good, True), ("0" * 64, False)):
        assert (
            proof_ok(TOKEN, proof, role="client", my_nonce="s", their_nonce="c", them=CLIENT) is ok
        )
    assert len(calls) == 2

    for path in (ROOT / "agent").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Compare) and any(
                isinstance(op, ast.Eq | ast.NotEq) for op in node.ops
            ):
                names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
                names |= {n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)}
                secret = {n for n in names if "proof" in n.lower() or "token" in n.lower()}
                assert not secret, f"{path.name}:{node.lineno} compares {secret} with ==/!="


def test_the_token_never_appears_in_any_output(
    fault_dns: FaultDNS, processes: list[AgentProcess], tmp_path: Path, record: Record
) -> None:
    """The token, given as a flag, a variable or a file, appears in no line the agent writes:
    not in a passing barrier (text and JSON logs), a wrong-token refusal, a timeout, `doctor`, or
    a usage error."""
    # `--token=VALUE`, not `--token VALUE`: one random token in 64 starts with "-", which
    # argparse takes for an option (a usage error, exit 2)
    token = secrets.token_urlsafe(24)
    token_file = tmp_path / "token"
    token_file.write_text(token + "\n")
    token_file.chmod(0o400)
    wrong_file = tmp_path / "wrong"
    wrong_file.write_text(secrets.token_urlsafe(24))
    wrong_file.chmod(0o400)

    ok = Job(fault_dns, 3)
    ok.publish()
    runs = [
        AgentProcess(agent_argv(ok, "wait", 0, f"--token={token}")),
        AgentProcess(
            agent_argv(ok, "wait", 1, "--log-format", "json"), env={"PEER_AGENT_TOKEN": token}
        ),
        AgentProcess(agent_argv(ok, "wait", 2, "--token-file", str(token_file))),
    ]
    processes.extend(runs)
    assert [r.finish() for r in runs] == [0, 0, 0], [r.stderr for r in runs]

    bad = Job(fault_dns, 2)
    bad.publish()
    failing = [
        AgentProcess(agent_argv(bad, "wait", 0, f"--token={token}", "--timeout", "2s")),
        AgentProcess(
            agent_argv(bad, "wait", 1, "--token-file", str(wrong_file), "--timeout", "2s")
        ),
        AgentProcess(agent_argv(bad, "doctor", 0, f"--token={token}")),
        AgentProcess(agent_argv(bad, "wait", 0, f"--token={token}", "--token-file", "/x")),
    ]
    processes.extend(failing)
    codes = [r.finish() for r in failing]
    # tokens that differ: exit 4 at the timeout; both tokens given: a usage error
    assert codes[:2] == [4, 4] and codes[3] == 2, [r.stderr for r in failing]
    assert "refused our token proof" in failing[0].stderr  # the refusal is said, the token not

    for run in runs + failing:
        output = run.stdout + run.stderr
        for form in (token, token[:12], token.encode().hex(), json.dumps(token)[1:-1]):
            assert form not in output, run.proc.args
    record(tries=len(runs) + len(failing))


# --- the token file's permissions -----------------------------------------------------------------
@pytest.mark.parametrize(("mode", "warned"), [(0o644, True), (0o640, False), (0o400, False)])
def test_a_world_readable_token_file_is_warned_about(
    tmp_path: Path, mode: int, warned: bool
) -> None:
    """A token file every user in the container can read (a Secret's default mode, 0644) gives a
    warning naming the fix, not an error; 0640 and 0400 give none."""
    path = tmp_path / "token"
    path.write_bytes(TOKEN)
    path.chmod(mode)
    values = {"peers": "1", "index": "0", "service": "s", "namespace": "n"}
    values = {**values, "token_file": str(path)}
    facts = replace(read_pod_facts(values, environ={}), hostname="a-0", hosts="")
    config = build_config("wait", values, facts)
    assert config.token == TOKEN
    text = " ".join(config.warnings)
    assert ("readable by every user" in text and "defaultMode: 0400" in text) == warned
    assert stat.S_IMODE(path.stat().st_mode) == mode  # only looked at


def test_the_warning_reaches_the_log_and_the_agent_carries_on(
    fault_dns: FaultDNS, processes: list[AgentProcess], tmp_path: Path
) -> None:
    path = tmp_path / "token"
    path.write_bytes(TOKEN)
    path.chmod(0o644)
    job = Job(fault_dns, 1)
    job.publish()
    agent = AgentProcess(agent_argv(job, "wait", 0, "--token-file", str(path)))
    processes.append(agent)
    assert agent.finish() == 0, agent.stderr
    assert "peer-agent: warning: --token-file / PEER_AGENT_TOKEN_FILE" in agent.stderr


# --- hellos that are valid JSON but odd -----------------------------------------------------------
def _hello_line(**changes: str) -> bytes:
    identity = {"job": JOB, "uid": "uid-1", "index": 1, "peers": 3, "port": 29300}
    identity.update({k: v for k, v in changes.items() if k in identity})
    body = {"v": 2, "t": "hello", "identity": identity, "role": "probe", "nonce": "ab" * 16}
    body.update({k: v for k, v in changes.items() if k not in identity})
    return json.dumps(body).encode() + b"\n"  # ensure_ascii: the odd strings travel escaped


ODD = {
    "lone surrogate in the job": {"job": "\ud800"},
    "lone surrogate in the uid": {"uid": "uid-\udfff"},
    "lone surrogate in the nonce": {"nonce": "\udfff"},
    "NUL in the uid": {"uid": "uid-1\x00"},
}


@pytest.mark.parametrize("token", [None, TOKEN], ids=["no-token", "token"])
@pytest.mark.parametrize("change", list(ODD))
@pytest.mark.asyncio
async def test_a_hello_with_odd_strings_is_refused_without_harm(
    change: str, token: bytes | None
) -> None:
    """JSON can carry strings that are not valid Unicode (lone surrogates) or hold NUL: such a
    hello, followed by a proof made of them, costs only its own connection."""
    outcomes = Outcomes()

    # raises if the server's task failed with anything but its own errors
    async with bare_server(token, outcomes) as where:
        raw = await RawClient.open(where)
        await raw.send(_hello_line(**ODD[change]))
        await raw.receive()
        await raw.send(b'{"v":2,"t":"proof","proof":"\\ud800"}\n')
        await raw.receive()
        await raw.aclose()
        await outcomes.at_least(1)
    assert len(outcomes.items) == 1


@pytest.mark.parametrize(
    "line",
    [b'{"v":2,"t":"refuse","reason":"\\ud800"}\n', b'{"v":2,"t":"proof","proof":"\\udc00"}\n'],
)
def test_decoded_messages_can_always_be_encoded_and_hashed(line: bytes) -> None:
    """Whatever the decoder accepts is safe to use: it encodes to UTF-8 (for HMACs, logs and
    replies) — else the decoder refuses it as WireError."""
    try:
        message = decode(line)
    except WireError:
        return
    encode(message)
    for value in vars(message).values():
        if isinstance(value, str):
            value.encode()


# --- a pod of another job -------------------------------------------------------------------------
@pytest.mark.asyncio
async def test_a_pod_of_another_run_of_the_job_is_never_counted(
    fault_dns: FaultDNS, record: Record
) -> None:
    """Pod 1 of a previous run of the job (same names, another controller uid) is up: one copy
    listens where DNS still points for pod 1, another runs as a member, and a third client
    says a member's hello to the coordinator itself. None is counted: the coordinator refuses
    the hello, the old member never gets in, the barrier waits for the real pod 1 and passes with
    it, and no pod reaches pod 1 at an old address."""
    job = Job(fault_dns, 3, uid="uid-of-this-run")
    job.publish(0, 2)
    stale, joiner = f"127.0.{job.net}.9", f"127.0.{job.net}.10"
    fault_dns.set(job.fqdn(1), stale)
    fault_dns.set(job.service, job.address(0), stale, job.address(2))
    old_run = Job(fault_dns, 3, uid="uid-of-the-previous-run", net=job.net, port=job.port)

    with FaultDNS() as empty:
        listener_config = Job(empty, 3, uid=old_run.uid, net=job.net, port=job.port).config(
            1, listen=stale
        )
        async with anyio.create_task_group() as tg:
            tg.start_soon(_serve_quietly, listener_config)
            member = old_run.start(tg, 1, listen=joiner)
            pods = [job.start(tg, 0), job.start(tg, 2)]
            await member.progress_with(f"{JOB}-0 (", "identity mismatch: job uid")
            raw = await RawClient.open((job.address(0), job.port))
            old_identity = identity_of(old_run.config(1))
            await raw.send(encode(Hello(old_identity, Role.MEMBER, "44" * 16)))
            first = await raw.receive()
            answer = await raw.receive() if isinstance(first, Hello) else first
            await raw.aclose()
            lines = [
                (await p.progress_with(f"{JOB}-1 (", "identity mismatch: job uid")).message
                for p in pods
            ]
            assert not any(p.done.is_set() for p in [*pods, member]), "released without pod 1"
            pods.insert(1, job.start(tg, 1))
            job.publish(1)
            await all_done(pods)
            assert not member.done.is_set()
            tg.cancel_scope.cancel()
    assert isinstance(answer, Refuse) and "identity mismatch: job uid" in answer.reason, answer
    assert released(pods), [p.error for p in pods]
    assert member.outcome is None
    for pod in pods:
        reached = [e.fields["address"] for e in pod.events if e.kind == "reached"]
        assert stale not in reached and joiner not in reached
        assert pod.outcome is not None and pod.outcome.peers[1].addresses == (job.address(1),)
    record(progress_line=lines[0])


@pytest.mark.asyncio
async def test_an_impostor_without_the_token_cannot_arrive(fault_dns: FaultDNS) -> None:
    """With a token, a client that knows everything else (job, uid, index, peer count and port
    are in every reply hello) cannot stand in for a missing pod: its member hello is refused
    and the barrier waits for the real pod."""
    job = Job(fault_dns, 2, uid="uid-1")
    job.publish()
    token = {"token": "s3cret"}

    async with anyio.create_task_group() as tg:
        pods = [job.start(tg, 0, **token)]
        await pods[0].until(lambda e: e.kind in ("progress", "reached"))
        answers = []
        for proof in ("", "00" * 32):
            raw = await RawClient.open((job.address(0), job.port))
            hello = Hello(identity_of(job.config(1)), Role.MEMBER, "55" * 16, proves=True)
            await raw.send(encode(hello))
            answers.append(await raw.receive())
            await raw.send(encode(Proof(proof)))
            answers.append(await raw.receive())
            await raw.aclose()
        await pods[0].progress_with(f"{JOB}-1 (")
        assert not pods[0].done.is_set()
        pods.append(job.start(tg, 1, **token))
        await all_done(pods)
    assert answers[1] == Refuse("bad token") and answers[3] == Refuse("bad token"), answers
    assert released(pods), [p.error for p in pods]


async def _serve_quietly(config: Config) -> None:
    await serve_and_wait(config, report=lambda e: None, deps=agent_deps())


def test_run_does_not_pass_the_token_to_the_workload(
    fault_dns: FaultDNS, processes: list[AgentProcess], tmp_path: Path
) -> None:
    """`run` execs the workload without PEER_AGENT_TOKEN: the secret authenticates agents, and
    the workload (and every child it starts) has no use for it. The peer environment is there,
    and so is any other variable (PEER_AGENT_TOKEN_FILE names a path, not the secret)."""
    token = secrets.token_urlsafe(24)
    job = Job(fault_dns, 1)
    job.publish()
    env = {"PEER_AGENT_TOKEN": token, "PEER_AGENT_TOKEN_FILE": "", "KEEP_ME": "yes"}
    argv = agent_argv(job, "run", 0, "--", "sh", "-c", "env; exit 5")
    workload = AgentProcess(argv, env=env)
    processes.append(workload)
    assert workload.finish() == 5, workload.stderr
    variables = dict(line.split("=", 1) for line in workload.stdout.splitlines() if "=" in line)
    assert "PEER_AGENT_TOKEN" not in variables
    assert token not in workload.stdout + workload.stderr
    assert variables["KEEP_ME"] == "yes" and variables["RANK"] == "0"
    assert "PEER_AGENT_TOKEN_FILE" in variables
