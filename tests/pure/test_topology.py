"""Scenario tables: what each controller gives a pod, and the peers peer-agent derives from it."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.config.model import BarrierMode, Config
from agent.config.parse import build_config, load_config
from agent.errors import ConfigError
from agent.topology.model import Kind
from agent.topology.podfiles import FileRead, PodFacts
from tests.support.budget import budget

pytestmark = pytest.mark.timeout(10)

ZONE = "svc.cluster.local"


def _hosts(hostname: str, subdomain: str, ns: str = "team-a") -> str:
    return f"127.0.0.1\tlocalhost\n10.244.1.7\t{hostname}.{subdomain}.{ns}.{ZONE}\t{hostname}\n"


@dataclass(frozen=True)
class Pod:
    """A pod as its controller makes it: hostname, subdomain, injected variables, files."""

    hostname: str
    subdomain: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)

    def facts(self) -> PodFacts:
        return PodFacts(
            hostname=self.hostname,
            hosts=_hosts(self.hostname, self.subdomain) if self.subdomain else "",
            sa_namespace="team-a",
            environ=self.env,
            files={p: FileRead(data) for p, data in self.files.items()},
        )


def _config(pod: Pod, flags: dict[str, str | None] | None = None) -> Config:
    return load_config("wait", flags or {}, pod.facts())


INDEXED = Pod("train-2", "train", {"JOB_COMPLETION_INDEX": "2", "PEER_AGENT_PEERS": "4"})
JOBSET = Pod(
    "train-workers-1-2",
    "train",
    {"JOB_COMPLETION_INDEX": "2", "PEER_AGENT_REPLICATED_JOBS": "driver=1x1,workers=2x4"},
)
JOBSET_SUBDOMAIN = Pod(
    "train-workers-0-1",
    "net",
    {"JOB_COMPLETION_INDEX": "1", "PEER_AGENT_REPLICATED_JOBS": "workers=1x2"},
)
LWS_SHARED = Pod(
    "vllm-1-2",
    "vllm",
    {"LWS_LEADER_ADDRESS": "vllm-1.vllm.team-a", "LWS_GROUP_SIZE": "4", "LWS_WORKER_INDEX": "2"},
)
LWS_UNIQUE_LEADER = Pod(
    "vllm-1",
    "vllm-1",
    {"LWS_LEADER_ADDRESS": "vllm-1.vllm-1.team-a", "LWS_GROUP_SIZE": "4", "LWS_WORKER_INDEX": "0"},
)
TRAINER = Pod(
    "mnist-node-0-2",
    "mnist",
    {
        "PET_NNODES": "3",
        "PET_NODE_RANK": "2",
        "PET_MASTER_ADDR": "mnist-node-0-0.mnist",
        "PET_MASTER_PORT": "29500",
        "JOB_COMPLETION_INDEX": "2",
    },
)
MPI_HOSTFILE = (
    b"pi-worker-0.pi.team-a.svc slots=2\npi-worker-1.pi.team-a.svc slots=2\n"
    b"pi-worker-2.pi.team-a.svc slots=2\n"
)
MPI_LAUNCHER = Pod(
    "pi-launcher",
    "pi",
    {"PEER_AGENT_PEERS_FROM": "/etc/mpi/hostfile", "PEER_AGENT_PROBE": "tcp:22"},
    {"/etc/mpi/hostfile": MPI_HOSTFILE},
)
VOLCANO_FILE = Pod(
    "vj-worker-1",
    "vj",
    {"PEER_AGENT_PEERS_FROM": "/etc/volcano/worker.host"},
    {"/etc/volcano/worker.host": b"vj-worker-0.vj\nvj-worker-1.vj"},  # no newline at the end
)
VOLCANO = Pod(  # what the svc plugin injects into every container: every task's hosts
    "vj-worker-1",
    "vj",
    {
        "VC_PS_HOSTS": "vj-ps-0.vj",
        "VC_PS_NUM": "1",
        "VC_WORKER_HOSTS": "vj-worker-0.vj,vj-worker-1.vj",
        "VC_WORKER_NUM": "2",
    },
)

# pod, kind, reason fragment, job, peers, index, fqdn(0), fqdn(last), service_fqdn
DERIVED = [
    pytest.param(
        INDEXED, Kind.INDEXED_JOB, "JOB_COMPLETION_INDEX", "train", 4, 2,
        f"train-0.train.team-a.{ZONE}.", f"train-3.train.team-a.{ZONE}.",
        f"train.team-a.{ZONE}.", id="indexed-job",
    ),
    pytest.param(
        JOBSET, Kind.JOBSET, "PEER_AGENT_REPLICATED_JOBS", "train", 9, 7,
        f"train-driver-0-0.train.team-a.{ZONE}.", f"train-workers-1-3.train.team-a.{ZONE}.",
        f"train.team-a.{ZONE}.", id="jobset-driver-and-workers",
    ),
    pytest.param(
        LWS_SHARED, Kind.LWS, "LWS_LEADER_ADDRESS", "vllm-1", 4, 2,
        f"vllm-1.vllm.team-a.{ZONE}.", f"vllm-1-3.vllm.team-a.{ZONE}.",
        f"vllm.team-a.{ZONE}.", id="lws-shared",
    ),
    pytest.param(
        LWS_UNIQUE_LEADER, Kind.LWS, "LeaderWorkerSet", "vllm-1", 4, 0,
        f"vllm-1.vllm-1.team-a.{ZONE}.", f"vllm-1-3.vllm-1.team-a.{ZONE}.",
        f"vllm-1.team-a.{ZONE}.", id="lws-unique-per-replica-leader",
    ),
    pytest.param(
        TRAINER, Kind.TRAINER, "PET_MASTER_ADDR", "mnist", 3, 2,
        f"mnist-node-0-0.mnist.team-a.{ZONE}.", f"mnist-node-0-2.mnist.team-a.{ZONE}.",
        f"mnist.team-a.{ZONE}.", id="trainer",
    ),
    pytest.param(
        MPI_LAUNCHER, Kind.HOSTFILE, "--peers-from", "pi", 3, None,
        f"pi-worker-0.pi.team-a.{ZONE}.", f"pi-worker-2.pi.team-a.{ZONE}.",
        f"pi.team-a.{ZONE}.", id="mpi-launcher-one-sided",
    ),
    pytest.param(
        VOLCANO_FILE, Kind.HOSTFILE, "--peers-from", "vj", 2, 1,
        f"vj-worker-0.vj.team-a.{ZONE}.", f"vj-worker-1.vj.team-a.{ZONE}.",
        f"vj.team-a.{ZONE}.", id="volcano-task-host-file",
    ),
    pytest.param(
        VOLCANO, Kind.HOSTFILE, "VC_WORKER_HOSTS lists this pod", "vj", 2, 1,
        f"vj-worker-0.vj.team-a.{ZONE}.", f"vj-worker-1.vj.team-a.{ZONE}.",
        f"vj.team-a.{ZONE}.", id="volcano-zero-config",
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("pod", "kind", "why", "job", "peers", "index", "first", "last", "service"), DERIVED
)
def test_auto_derives_each_framework(
    pod: Pod,
    kind: Kind,
    why: str,
    job: str,
    peers: int,
    index: int | None,
    first: str,
    last: str,
    service: str | None,
) -> None:
    t = _config(pod).topology
    assert (t.kind, t.job, t.peers, t.index) == (kind, job, peers, index)
    assert why in t.describe() and str(kind) in t.describe()
    assert (t.fqdn(0), t.fqdn(peers - 1), t.service_fqdn) == (first, last, service)
    if index is not None:  # this pod's own name is its own
        assert t.hostname(index) == pod.hostname


def test_a_launcher_waits_one_sided() -> None:
    config = _config(MPI_LAUNCHER)
    assert config.barrier is BarrierMode.NONE and str(config.probe) == "tcp:22"


def test_jobset_subdomain_other_than_its_name_needs_the_name() -> None:
    with pytest.raises(ConfigError, match="--job-name / PEER_AGENT_JOB_NAME"):
        _config(JOBSET_SUBDOMAIN)
    t = _config(JOBSET_SUBDOMAIN, {"job_name": "train"}).topology
    assert (t.index, t.fqdn(0)) == (1, f"train-workers-0-0.net.team-a.{ZONE}.")


def test_an_explicit_topology_wins_over_auto() -> None:
    """Inside a JobSet, --topology indexed-job gives a barrier over the pod's own child Job."""
    pod = Pod("train-workers-1-2", "train", {**JOBSET.env, "PEER_AGENT_PEERS": "4"})
    t = _config(pod, {"topology": "indexed-job", "replicated_jobs": None}).topology
    assert (t.kind, t.job, t.index, t.reason) == (Kind.INDEXED_JOB, "train-workers-1", 2, "")
    assert t.describe() == "indexed-job"


BAD = [
    pytest.param(INDEXED, {"topology": "slurm"}, ["--topology / PEER_AGENT_TOPOLOGY: unknown"],
                 id="unknown-topology"),
    pytest.param(INDEXED, {"topology": "jobset"}, ["--replicated-jobs / PEER_AGENT_REPLICATED_"
                 "JOBS: required"], id="jobset-without-shape"),
    pytest.param(JOBSET, {"replicated_jobs": "workers=2"}, ["not NAME=REPLICASxPODS"],
                 id="jobset-bad-shape"),
    pytest.param(JOBSET, {"replicated_jobs": "a=1x1,a=2x2"}, ["listed twice"], id="jobset-twice"),
    pytest.param(JOBSET, {"replicated_jobs": "driver=1x1"},
                 ["is not train-<rjob>-<jobIdx>-<podIdx> for a listed replicatedJob (driver)"],
                 id="jobset-own-rjob-missing"),
    pytest.param(JOBSET, {"replicated_jobs": "workers=1x4"}, ["outside workers=1x4"],
                 id="jobset-shape-too-small"),
    pytest.param(JOBSET, {"peers": "8"}, ["--peers / PEER_AGENT_PEERS: '8' differs from 9"],
                 id="jobset-peers-disagree"),
    pytest.param(JOBSET, {"index": "3"}, ["--index / JOB_COMPLETION_INDEX: '3' is not the pod"],
                 id="jobset-index-disagrees"),
    pytest.param(JOBSET, {"replicated_jobs": f"driver{'r' * 50}=1x1,workers=2x4"},
                 ["--job-name / PEER_AGENT_JOB_NAME: peer hostname", "over 63"],
                 id="jobset-name-too-long"),
    pytest.param(LWS_SHARED, {"hostname": "other-0"}, ["--hostname / PEER_AGENT_HOSTNAME",
                 "is not peer 2's hostname 'vllm-1-2'"], id="lws-wrong-pod"),
    pytest.param(Pod("vllm-1-2", "vllm", {**LWS_SHARED.env, "LWS_GROUP_SIZE": "x"}), {},
                 ["--peers / PEER_AGENT_PEERS / LWS_GROUP_SIZE: not a positive integer: 'x'"],
                 id="lws-bad-size"),
    pytest.param(Pod("vllm-1-2", "vllm", {**LWS_SHARED.env, "LWS_WORKER_INDEX": "4"}), {},
                 ["--index / JOB_COMPLETION_INDEX / LWS_WORKER_INDEX: index 4 is not below"],
                 id="lws-index-too-big"),
    pytest.param(Pod("vllm-1-2", "vllm", {**LWS_SHARED.env, "LWS_LEADER_ADDRESS": "vllm-1"}),
                 {}, ["LWS_LEADER_ADDRESS: not <host>.<service>"], id="lws-bad-leader"),
    pytest.param(Pod("m-node-0-1", "m", {**TRAINER.env, "PET_MASTER_ADDR": "m-node-0-1.m"}),
                 {}, ["PET_MASTER_ADDR: 'm-node-0-1' is not node 0"], id="trainer-bad-master"),
    pytest.param(Pod("mnist-node-0-2", "mnist", {**TRAINER.env, "PET_NNODES": "0"}), {},
                 ["--peers / PEER_AGENT_PEERS / PET_NNODES: not a positive integer"],
                 id="trainer-no-nodes"),
    pytest.param(MPI_LAUNCHER, {"probe": "tcp"}, ["--probe / PEER_AGENT_PROBE: this pod "
                 "(hostfile) is not one of the 3 peers", "tcp:22 for sshd"], id="launcher-hello"),
    pytest.param(MPI_LAUNCHER, {"barrier": "all"}, ["--barrier / PEER_AGENT_BARRIER"],
                 id="launcher-barrier"),
    pytest.param(MPI_LAUNCHER, {"peers_from": "/nonexistent"},
                 ["--peers-from / PEER_AGENT_PEERS_FROM: cannot read '/nonexistent'"],
                 id="hostfile-unreadable"),
    pytest.param(Pod("l", "pi", MPI_LAUNCHER.env, {"/etc/mpi/hostfile": b"# none\n\n"}), {},
                 ["lists no hosts"], id="hostfile-empty"),
    pytest.param(Pod("l", "pi", MPI_LAUNCHER.env, {"/etc/mpi/hostfile": b"a.b slots=x\n"}), {},
                 ["line 1: not 'HOST', 'HOST slots=N' or 'HOST:N'"], id="hostfile-bad-slots"),
    pytest.param(Pod("l", "pi", MPI_LAUNCHER.env, {"/etc/mpi/hostfile": b"w-0\nw-1\n"}), {},
                 ["lists bare hostnames", "--service / PEER_AGENT_SERVICE"], id="bare-names"),
    pytest.param(MPI_LAUNCHER, {"peers": "4"}, ["lists 3 hosts, not 4"], id="hostfile-count"),
    pytest.param(INDEXED, {"hostfile_format": "slurm"},
                 ["--hostfile-format / PEER_AGENT_HOSTFILE_FORMAT: unknown format"],
                 id="hostfile-format"),
]  # fmt: skip


@pytest.mark.parametrize(("pod", "flags", "expected"), BAD)
def test_bad_input_names_flag_and_variable(
    pod: Pod, flags: dict[str, str | None], expected: list[str]
) -> None:
    with pytest.raises(ConfigError) as info:
        _config(pod, flags)
    text = "\n".join(info.value.problems)
    for fragment in expected:
        assert fragment in text
    assert all(problem.startswith(("--", "LWS_", "PET_")) for problem in info.value.problems)


def test_every_problem_at_once_across_topology_and_options() -> None:
    pod = Pod("vllm-1-2", "vllm", {**LWS_SHARED.env, "LWS_GROUP_SIZE": "x"})
    with pytest.raises(ConfigError) as info:
        _config(pod, {"port": "0", "timeout": "soon"})
    names = [p.split(":", 1)[0] for p in info.value.problems]
    assert names == [
        "--peers / PEER_AGENT_PEERS / LWS_GROUP_SIZE",
        "--port / PEER_AGENT_PORT",
        "--timeout / PEER_AGENT_TIMEOUT",
    ]


def test_hostname_comes_from_the_pod_when_no_flag() -> None:
    config = build_config("wait", {"peers": "4", "index": "2"}, INDEXED.facts())
    assert config.hostname == "train-2"


_TEXT = st.text(alphabet="abc019-.:_ \n²", max_size=12)


@settings(max_examples=budget(3), deadline=None)
@given(
    env=st.dictionaries(
        st.sampled_from(
            [
                "LWS_LEADER_ADDRESS",
                "LWS_GROUP_SIZE",
                "LWS_WORKER_INDEX",
                "PET_MASTER_ADDR",
                "PET_NNODES",
                "PET_NODE_RANK",
                "JOB_COMPLETION_INDEX",
                "PEER_AGENT_PEERS",
                "PEER_AGENT_REPLICATED_JOBS",
                "PEER_AGENT_TOPOLOGY",
                "PEER_AGENT_PEERS_FROM",
            ]
        ),
        _TEXT,
    ),
    hostname=_TEXT,
    hostfile=st.binary(max_size=40),
)
def test_any_controller_input_is_a_config_or_a_config_error(
    env: dict[str, str], hostname: str, hostfile: bytes
) -> None:
    """What a controller or a user puts in the pod never crashes the parse: a Config whose
    names are valid, or every problem named."""
    pod = Pod(hostname, "svc", env, {env.get("PEER_AGENT_PEERS_FROM", "/h"): hostfile})
    try:
        t = _config(pod).topology
    except ConfigError as error:
        assert error.problems
        return
    assert t.index is None or 0 <= t.index < t.peers
    assert all(t.fqdn(i).endswith(".") for i in (0, t.peers - 1))
