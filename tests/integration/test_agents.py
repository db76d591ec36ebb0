"""Agents as real processes on loopback; unbound as cluster DNS, records changed at run time."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import pytest

from tests.integration.conftest import DRIVERS, Agents, finish, fqdn, wait_for_line

# The start barrier over both drivers (agent.commands.drivers)
pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.parametrize("driver", DRIVERS, indirect=True),
]


def test_three_agents_wait_for_records_published_late(agents: Agents, tmp_path: Path) -> None:
    procs = [
        agents.start("wait", i, 3, "--hostfile", str(tmp_path / f"hosts{i}"), "--slots", "2")
        for i in range(3)
    ]
    wait_for_line(procs[2], "waiting")  # all have started and see nothing yet
    for i in range(3):
        agents.publish(i)
    for i, proc in enumerate(procs):
        code, _, err = finish(proc)
        assert code == 0, err
        assert "barrier released" in err
        assert (tmp_path / f"hosts{i}").read_text() == "".join(
            f"{fqdn(j)} slots=2\n" for j in range(3)
        )


def test_a_peer_that_never_appears_times_out_with_exit_3(agents: Agents) -> None:
    agents.publish(0)
    proc = agents.start("wait", 0, 2, "--timeout", "2s", "--barrier", "none")
    code, _, err = finish(proc)
    assert code == 3
    assert f"missing {fqdn(1)}: not in DNS" in err
    assert "reached " + fqdn(0) in err


def test_zero_peers_resolved_hints_at_publish_not_ready(agents: Agents) -> None:
    code, _, err = finish(agents.start("wait", 0, 2, "--timeout", "1s"))
    assert code == 3
    assert "publishNotReadyAddresses" in err


def test_run_execs_the_workload_with_the_peer_environment(agents: Agents) -> None:
    for i in range(2):
        agents.publish(i)
    script = 'echo "$RANK/$WORLD_SIZE $MASTER_ADDR $PEER_HOSTS"; exit 7'
    procs = [agents.start("run", i, 2, "--", "sh", "-c", script) for i in range(2)]
    results = [finish(p) for p in procs]
    assert [code for code, _, _ in results] == [7, 7]  # the workload's exit code
    assert results[1][1].strip() == f"1/2 {fqdn(0)} {fqdn(0)},{fqdn(1)}"


def test_env_file_and_peers_json(agents: Agents, tmp_path: Path) -> None:
    agents.publish(0)
    env_file, peers_json = tmp_path / "peers.env", tmp_path / "peers.json"
    proc = agents.start("wait", 0, 1, "--env-file", str(env_file), "--peers-json", str(peers_json))
    assert finish(proc)[0] == 0
    assert env_file.read_text().splitlines() == [
        "RANK=0",
        "WORLD_SIZE=1",
        f"MASTER_ADDR={fqdn(0)}",
        f"PEER_HOSTS={fqdn(0)}",
        "PEER_AGENT_INDEX=0",
        "PEER_AGENT_PEERS=1",
    ]
    body = json.loads(peers_json.read_text())
    assert body["peers"] == [
        {"index": 0, "hostname": "example-job-0", "fqdn": fqdn(0), "addresses": [agents.address(0)]}
    ]


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signals_end_the_wait_promptly_without_output(
    agents: Agents, tmp_path: Path, signum: int, code: int
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    proc = agents.start("wait", 0, 2, "--hostfile", str(out / "hosts"))
    wait_for_line(proc, "pod 0 of 2")
    proc.send_signal(signum)
    assert finish(proc, timeout=5)[0] == code
    assert list(out.iterdir()) == []  # nothing half-written


def test_doctor_shows_dns_and_probe_per_peer(agents: Agents) -> None:
    agents.publish(0)
    agents.publish(1)
    sidecar = agents.start("sidecar", 0, 3, "--barrier", "none")
    wait_for_line(sidecar, "pod 0 of 3")
    code, out, _ = finish(agents.start("doctor", 1, 3))
    assert code == 3
    rows = {line.split()[0]: line for line in out.splitlines() if line[:1].isdigit()}
    assert agents.address(0) in rows["0"] and rows["0"].rstrip().endswith("ok")
    assert "refused" in rows["1"]  # published, but no agent listening
    assert "NXDOMAIN" in rows["2"] and "not tried" in rows["2"]
    assert "some peers are not reachable" in out
    # whose contacts count: the line to read when a mesh holds them all
    assert "contacts from addresses DNS lists for the Service (no token)" in out


def test_own_name_at_a_stale_address_is_not_counted(agents: Agents) -> None:
    """Pod 0's name still points at the address where pod 1 now runs (a stale record)."""
    agents.publish(0, address=agents.address(1))
    agents.publish(1)
    agents.start("sidecar", 1, 2, "--barrier", "none")
    proc = agents.start("wait", 0, 2, "--timeout", "2s", "--barrier", "none")
    code, _, err = finish(proc)
    assert code == 3
    assert "identity mismatch: index 1, expected 0" in err


def test_a_pod_of_another_job_run_is_never_counted(agents: Agents) -> None:
    """Same job name, another uid (a previous run), at an address the Service still lists."""
    agents.publish(0)
    agents.publish(1, address=agents.address(5))
    old = agents.address(5)
    agents.start("sidecar", 1, 2, "--job-uid", "old-run", address=old)
    proc = agents.start("wait", 0, 2, "--job-uid", "new-run", "--timeout", "2s")
    code, _, err = finish(proc)
    assert code == 3
    assert "job uid old-run, expected new-run" in err


def test_peers_that_disagree_on_the_count_abort_with_exit_4(agents: Agents) -> None:
    agents.publish(0)
    agents.publish(1)
    first = agents.start("wait", 0, 2)
    second = agents.start("wait", 1, 3, "--timeout", "10s")
    assert finish(first)[0] == 4
    code, _, err = finish(second)
    assert code == 4
    assert "peer count differs" in err


def test_token_mismatch_is_refused_and_never_counted(agents: Agents, tmp_path: Path) -> None:
    agents.publish(0)
    agents.publish(1)
    good, bad = tmp_path / "good", tmp_path / "bad"
    good.write_text("s3cret-good\n")
    bad.write_text("s3cret-bad\n")
    coordinator = agents.start("wait", 0, 2, "--token-file", str(good), "--timeout", "3s")
    intruder = agents.start("wait", 1, 2, "--token-file", str(bad), "--timeout", "3s")
    # Both exit 4 at the deadline (retrying cannot help), neither before: pod 1 never counted.
    code, _, err = finish(intruder)
    assert code == 4, err
    assert "the pods do not share one token" in err
    code, _, err = finish(coordinator)
    assert code == 4, err
    assert "token" in err
    assert "s3cret" not in err  # the secret is never logged


def test_a_file_limit_too_low_for_the_peer_count_is_a_usage_error(agents: Agents) -> None:
    proc = agents.start("wait", 0, 2000, "--timeout", "2s")
    proc.communicate()
    argv = ["prlimit", "--nofile=256:256", "--", *proc.args]  # type: ignore[misc]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert "--peers / PEER_AGENT_PEERS: 2000 peers need about" in done.stderr
    assert "ulimit -n" in done.stderr and "Traceback" not in done.stderr


def test_json_logs_are_one_object_a_line(agents: Agents) -> None:
    agents.publish(0)
    code, _, err = finish(agents.start("wait", 0, 1, "--log-format", "json"))
    assert code == 0
    records = [json.loads(line) for line in err.splitlines()]
    kinds = [r["event"] for r in records]
    assert kinds[0] == "start" and "reached" in kinds and kinds[-1] == "released"
    reached = next(r for r in records if r["event"] == "reached")
    assert reached["peer"] == 0 and reached["address"] == agents.address(0)
    assert all(r["index"] == 0 and r["ts"].endswith("+00:00") for r in records)
