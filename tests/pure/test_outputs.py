"""What each launcher reads after the barrier, per framework; hostfiles in and out."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import pytest

from agent.config.parse import load_config
from agent.core.outcome import Outcome, PeerInfo, ReleaseKind
from agent.io.outputs import peer_environment, write_outputs
from agent.io.podfacts import read_pod_facts
from agent.topology.hostfile import Host, parse_hostfile, qualify
from tests.pure.controller_pods import INDEXED, LWS_SHARED, MPI_LAUNCHER, TRAINER, ZONE, Pod

pytestmark = pytest.mark.timeout(10)

#: what the Training Operator gives worker 1 of a PyTorchJob of a master and 2 workers, with
#: nprocPerNode 2: WORLD_SIZE counts processes (pods x nprocPerNode), not pods
PYTORCHJOB_2_PROCS = Pod(
    "pt-worker-1",
    env={
        "MASTER_ADDR": "pt-master-0",
        "PET_MASTER_ADDR": "pt-master-0",
        "PET_NNODES": "3",
        "PET_NPROC_PER_NODE": "2",
        "PET_NODE_RANK": "2",
        "RANK": "2",
        "WORLD_SIZE": "6",
    },
)


ENVIRONMENTS = [
    pytest.param(
        INDEXED,
        {"RANK": "2", "WORLD_SIZE": "4", "MASTER_ADDR": f"train-0.train.team-a.{ZONE}"},
        ["LWS_LEADER_ADDRESS", "PET_MASTER_ADDR"],
        id="indexed-job",
    ),
    pytest.param(
        LWS_SHARED,
        {
            "RANK": "2",
            "LWS_LEADER_ADDRESS": f"vllm-1.vllm.team-a.{ZONE}",  # LWS's own lacks svc.<zone>
            "LWS_GROUP_SIZE": "4",
            "LWS_WORKER_INDEX": "2",
        },
        ["PET_MASTER_ADDR"],
        id="lws",
    ),
    pytest.param(
        TRAINER,
        {
            "MASTER_ADDR": f"mnist-node-0-0.mnist.team-a.{ZONE}",
            "PET_MASTER_ADDR": f"mnist-node-0-0.mnist.team-a.{ZONE}",
            "PET_NNODES": "3",
            "PET_NODE_RANK": "2",
        },
        ["LWS_LEADER_ADDRESS"],
        id="trainer",
    ),
    pytest.param(
        MPI_LAUNCHER,
        {"WORLD_SIZE": "3", "MASTER_ADDR": f"pi-worker-0.pi.team-a.{ZONE}"},
        ["RANK", "PEER_AGENT_INDEX"],  # a launcher is not one of the ranks
        id="mpi-launcher",
    ),
    pytest.param(
        PYTORCHJOB_2_PROCS,
        {"WORLD_SIZE": "6", "RANK": "2", "PEER_AGENT_PEERS": "3", "PEER_AGENT_INDEX": "2"},
        ["LWS_LEADER_ADDRESS"],
        id="pytorchjob-keeps-the-operators-world-size",
    ),
]


@pytest.mark.parametrize(("pod", "expected", "absent"), ENVIRONMENTS)
def test_the_environment_speaks_each_launchers_language(
    pod: Pod, expected: dict[str, str], absent: list[str]
) -> None:
    env = peer_environment(load_config("run", {}, pod.facts()))
    assert env | expected == env
    assert not set(absent) & set(env)


@pytest.mark.parametrize(
    ("form", "slots", "line"),
    [
        ("openmpi", "4", f"pi-worker-0.pi.team-a.{ZONE} slots=4"),
        ("mpich", "4", f"pi-worker-0.pi.team-a.{ZONE}:4"),
        ("plain", "4", f"pi-worker-0.pi.team-a.{ZONE}"),
        ("openmpi", None, f"pi-worker-0.pi.team-a.{ZONE}"),
    ],
)
def test_hostfile_formats(tmp_path: Path, form: str, slots: str | None, line: str) -> None:
    flags = {"hostfile": str(tmp_path / "hosts"), "hostfile_format": form, "slots": slots}
    config = load_config("wait", flags, MPI_LAUNCHER.facts())
    outcome = Outcome(ReleaseKind.DECIDED, 0.1, ())
    assert write_outputs(config, outcome) == [tmp_path / "hosts"]
    lines = (tmp_path / "hosts").read_text().splitlines()
    assert lines[0] == line and len(lines) == 3


def test_peers_json_of_a_launcher_has_no_index(tmp_path: Path) -> None:
    config = load_config("wait", {"peers_json": str(tmp_path / "p.json")}, MPI_LAUNCHER.facts())
    peer = PeerInfo(0, "pi-worker-0", f"pi-worker-0.pi.team-a.{ZONE}", ("198.18.0.2",))
    write_outputs(config, Outcome(ReleaseKind.NO_BARRIER, 0.1, (peer,)))
    body = json.loads((tmp_path / "p.json").read_text())
    assert body["index"] is None and body["peers"][0]["addresses"] == ["198.18.0.2"]


HOSTFILES = [
    pytest.param(
        "a.j.ns.svc slots=2\nb.j.ns.svc slots=2\n",
        [Host("a.j.ns.svc", 2), Host("b.j.ns.svc", 2)],
        id="mpi-operator-openmpi",
    ),
    pytest.param("a.j.ns.svc:4\n", [Host("a.j.ns.svc", 4)], id="intel-mpich"),
    pytest.param("w-0.vj\nw-1.vj", [Host("w-0.vj"), Host("w-1.vj")], id="volcano-no-newline"),
    pytest.param(
        "# comment\n\n  A.J   max_slots=8 slots=2 # why\na.j\n",
        [Host("a.j", 2)],
        id="comments-case-duplicates",
    ),
    pytest.param("x.example.com.\n", [Host("x.example.com.")], id="absolute"),
]


@pytest.mark.parametrize(("text", "hosts"), HOSTFILES)
def test_hostfile_lines(text: str, hosts: list[Host]) -> None:
    assert parse_hostfile(text) == (hosts, [])


@pytest.mark.parametrize(
    "line", ["a.j slots=0", "a.j:x", "a.j extra", "bad_name", "-a.j", "a..j", "a.j slots="]
)
def test_hostfile_line_that_is_not_a_host(line: str) -> None:
    hosts, problems = parse_hostfile(f"ok.j\n{line}\n")
    assert hosts == [Host("ok.j")] and problems[0].startswith("line 2: ")


@pytest.mark.parametrize(
    ("name", "service", "expected"),
    [
        ("w-0", "svc", "w-0.svc.ns.svc.cluster.local"),
        ("w-0.vj", None, "w-0.vj.ns.svc.cluster.local"),
        ("l-1.lws.ns2", None, "l-1.lws.ns2.svc.cluster.local"),
        ("w-0.j.ns.svc", None, "w-0.j.ns.svc.cluster.local"),
        ("w-0.j.ns.svc.cluster.local", None, "w-0.j.ns.svc.cluster.local"),
        ("db.corp.example.com", None, "db.corp.example.com"),
        ("host.example.", None, "host.example"),
    ],
)
def test_listed_names_become_absolute(name: str, service: str | None, expected: str) -> None:
    assert qualify(name, service=service, namespace="ns", zone="cluster.local") == expected


def test_pod_facts_adapter_reads_what_options_name(tmp_path: Path) -> None:
    """The one place that reads the pod: the files and directories named by a flag or a variable,
    the token file's mode, and the environment as given."""
    token = tmp_path / "token"
    token.write_bytes(b"s3cret\n")
    os.chmod(token, 0o640)
    hosts = tmp_path / "hostfile"
    hosts.write_text("a.b\n")
    environ = {"PEER_AGENT_PEERS_FROM": str(hosts), "LWS_GROUP_SIZE": "2"}
    flags = {"token_file": str(token), "env_file": str(tmp_path / "no" / "env"), "hostfile": None}
    facts = read_pod_facts(flags, environ=environ)
    assert facts.file(str(token)).data == b"s3cret\n"
    mode = facts.file(str(token)).mode
    assert mode is not None and mode & 0o777 == 0o640
    assert facts.file(str(hosts)).data == b"a.b\n"
    assert facts.missing_dirs == {str(tmp_path / "no")}
    assert facts.environ == environ and facts.hostname
    assert facts.file(str(tmp_path / "other")).data is None  # not named: not read
    assert "s3cret" not in repr(facts)


def test_pod_facts_adapter_reports_an_unreadable_file(tmp_path: Path) -> None:
    facts = read_pod_facts({"token_file": str(tmp_path)}, environ={})  # a directory
    assert facts.file(str(tmp_path)).error == "Is a directory"
    facts = replace(facts, hostname="a-0")  # a value: tests amend it freely
    assert facts.hostname == "a-0"
