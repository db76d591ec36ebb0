"""Scenario tables: what each controller gives a pod, and the peers peer-agent derives from it."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.config.model import BarrierMode, Config
from agent.config.parse import build_config, load_config
from agent.errors import ConfigError
from agent.topology.model import Kind, is_dns_label
from agent.topology.podfiles import PodFacts, parse_resolv_conf
from tests.pure.controller_pods import (
    INDEXED,
    JAXJOB,
    JOBSET,
    JOBSET_SUBDOMAIN,
    LWS_SHARED,
    LWS_UNIQUE_LEADER,
    MPI_LAUNCHER,
    PADDLEJOB,
    PYTORCHJOB,
    PYTORCHJOB_ELASTIC,
    TF_CONFIG,
    TFJOB,
    TRAINER,
    VOLCANO,
    VOLCANO_FILE,
    XGBOOSTJOB,
    ZONE,
    Pod,
)
from tests.support.budget import budget

pytestmark = pytest.mark.timeout(10)


def _config(pod: Pod, flags: dict[str, str | None] | None = None) -> Config:
    return load_config("wait", flags or {}, pod.facts())


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
        MPI_LAUNCHER, Kind.HOSTFILE, "PEER_AGENT_PEERS_FROM is set", "pi", 3, None,
        f"pi-worker-0.pi.team-a.{ZONE}.", f"pi-worker-2.pi.team-a.{ZONE}.",
        f"pi.team-a.{ZONE}.", id="mpi-launcher-one-sided",
    ),
    pytest.param(
        VOLCANO_FILE, Kind.HOSTFILE, "PEER_AGENT_PEERS_FROM is set", "vj", 2, 1,
        f"vj-worker-0.vj.team-a.{ZONE}.", f"vj-worker-1.vj.team-a.{ZONE}.",
        f"vj.team-a.{ZONE}.", id="volcano-task-host-file",
    ),
    pytest.param(
        VOLCANO, Kind.HOSTFILE, "VC_WORKER_HOSTS lists this pod", "vj", 2, 1,
        f"vj-worker-0.vj.team-a.{ZONE}.", f"vj-worker-1.vj.team-a.{ZONE}.",
        f"vj.team-a.{ZONE}.", id="volcano-zero-config",
    ),
    pytest.param(
        PYTORCHJOB, Kind.TRAINING_OPERATOR, "PET_NNODES", "pt", 3, 2,
        f"pt-master-0.team-a.{ZONE}.", f"pt-worker-1.team-a.{ZONE}.", None, id="pytorchjob",
    ),
    pytest.param(
        PYTORCHJOB_ELASTIC, Kind.TRAINING_OPERATOR, "Kubeflow Training Operator", "pt", 4, 1,
        f"pt-worker-0.team-a.{ZONE}.", f"pt-worker-3.team-a.{ZONE}.", None,
        id="pytorchjob-elastic-workers-only",
    ),
    pytest.param(
        TFJOB, Kind.TRAINING_OPERATOR, "TF_CONFIG", "tf", 4, 3,
        f"tf-chief-0.ml.{ZONE}.", f"tf-worker-1.ml.{ZONE}.", None, id="tfjob",
    ),
    pytest.param(
        JAXJOB, Kind.TRAINING_OPERATOR, "NUM_PROCESSES", "jx", 4, 2,
        f"jx-worker-0.team-a.{ZONE}.", f"jx-worker-3.team-a.{ZONE}.", None, id="jaxjob",
    ),
    pytest.param(
        XGBOOSTJOB, Kind.TRAINING_OPERATOR, "MASTER_ADDR", "xg", 3, 1,
        f"xg-master-0.team-a.{ZONE}.", f"xg-worker-1.team-a.{ZONE}.", None, id="xgboostjob",
    ),
    pytest.param(
        PADDLEJOB, Kind.TRAINING_OPERATOR, "PADDLE_NNODES", "pd", 2, 1,
        f"pd-worker-0.team-a.{ZONE}.", f"pd-worker-1.team-a.{ZONE}.", None,
        id="paddlejob-collective",
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
    pytest.param(Pod("pt-worker-1", env={"PET_NNODES": "1:4"}), {},
                 ["--peers / PEER_AGENT_PEERS: PET_NNODES is the elastic range '1:4'"],
                 id="pytorchjob-elastic-range"),
    pytest.param(PYTORCHJOB, {"peers": "4"},
                 ["--peers / PEER_AGENT_PEERS: '4' differs from 3, the PET_NNODES"],
                 id="pytorchjob-peers-disagree"),
    pytest.param(Pod("pt-worker-1", env={**PYTORCHJOB.env, "PET_NODE_RANK": "1"}), {},
                 ["PET_NODE_RANK: 1 is not the rank of 'pt-worker-1' (2)"],
                 id="pytorchjob-rank-disagrees"),
    pytest.param(Pod("pt-worker-2", env=PYTORCHJOB.env), {},
                 ["--hostname / PEER_AGENT_HOSTNAME: 'pt-worker-2' is not one of pt's pods "
                  "(master=1, worker=2)"], id="pytorchjob-pod-outside-the-job"),
    pytest.param(Pod("pt-worker-1"), {"topology": "training-operator"},
                 ["none of the Training Operator's variables", "never in init containers"],
                 id="training-operator-in-an-init-container"),
    pytest.param(Pod("pt-1", env=PYTORCHJOB.env), {"topology": "training-operator"},
                 ["--hostname / PEER_AGENT_HOSTNAME: 'pt-1' is not <job>-<type>-<index>"],
                 id="training-operator-hostname"),
    pytest.param(Pod("tf-worker-1", env={"TF_CONFIG": TF_CONFIG.replace(
                 '["tf-worker-0.ml.svc:2222","tf-worker-1.ml.svc:2222"]',
                 '{"1":"tf-worker-1.ml.svc:2222"}')}), {},
                 ["TF_CONFIG lists only part of the cluster (enableDynamicWorker)"],
                 id="tfjob-dynamic-worker"),
    pytest.param(Pod("tf-worker-1", env={"TF_CONFIG": "{"}), {},
                 ["TF_CONFIG: not the operator's"], id="tfjob-bad-json"),
    pytest.param(Pod("pd-worker-1", env={"PADDLE_NNODES": "3", "PADDLE_TRAINER_NUM": "1"}), {},
                 ["PADDLE_TRAINER_NUM: a PaddleJob with a Master (parameter-server mode)"],
                 id="paddlejob-parameter-server"),
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
    variables = ("--", "LWS_", "PET_", "TF_CONFIG", "PADDLE_")
    assert all(problem.startswith(variables) for problem in info.value.problems)


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


def test_a_training_operator_pod_without_token_finds_namespace_and_zone_in_resolv_conf() -> None:
    """No subdomain (no FQDN line in /etc/hosts), no service-account token: kubelet's search
    list still says where the pod is, custom cluster domain included."""
    resolv = "search ml.svc.corp.example svc.corp.example corp.example\nnameserver 10.96.0.10\n"
    facts = PodFacts(hostname="pt-worker-1", resolv_conf=resolv, environ=PYTORCHJOB.env)
    t = load_config("wait", {}, facts).topology
    assert (t.namespace, t.zone, t.fqdn(0)) == (
        "ml",
        "corp.example",
        "pt-master-0.ml.svc.corp.example.",
    )
    with pytest.raises(ConfigError, match="--namespace / PEER_AGENT_NAMESPACE: cannot derive"):
        load_config("wait", {}, PodFacts(hostname="pt-worker-1", environ=PYTORCHJOB.env))


def test_a_volcano_tensorflow_pod_stays_a_volcano_pod() -> None:
    """Volcano's tensorflow plugin sets TF_CONFIG in pods named <job>-<task>-<i>, as the
    Training Operator names its own: the svc plugin's host list decides."""
    tf_config = (
        '{"cluster":{"ps":["vj-ps-0.vj:2222"],"worker":["vj-worker-0.vj:2222",'
        '"vj-worker-1.vj:2222"]},"task":{"type":"worker","index":1}}'
    )
    pod = Pod("vj-worker-1", "vj", {**VOLCANO.env, "TF_CONFIG": tf_config})
    t = _config(pod).topology
    assert (t.kind, t.peers, t.index) == (Kind.HOSTFILE, 2, 1)


def test_a_training_operator_job_with_a_service_of_its_own_is_found_in_one_query() -> None:
    """A pod template that sets subdomain to a headless Service the user made: the peers are
    named under it and that Service's own name lists them all (bulk discovery)."""
    pod = Pod("pt-worker-1", "pt", PYTORCHJOB.env)
    t = _config(pod).topology
    assert (t.fqdn(0), t.service_fqdn) == (f"pt-master-0.pt.team-a.{ZONE}.", f"pt.team-a.{ZONE}.")


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
                "WORLD_SIZE",
                "RANK",
                "MASTER_ADDR",
                "NUM_PROCESSES",
                "COORDINATOR_ADDRESS",
                "PADDLE_NNODES",
                "TF_CONFIG",
            ]
        ),
        st.one_of(_TEXT, st.sampled_from(["1:2", "3:3", "x-master-0", TF_CONFIG, '{"cluster":1}'])),
    ),
    hostname=st.one_of(_TEXT, st.sampled_from(["x-master-0", "x-worker-1", "tf-ps-0"])),
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


@pytest.mark.parametrize(
    ("search", "found"),
    [
        (
            "search ml.svc.cluster.local svc.cluster.local cluster.local node.internal",
            ("ml", "cluster.local"),
        ),
        ("search node.internal", None),  # dnsPolicy: Default inherits the node's
        ("search svc.cluster.local cluster.local", None),
        ("search a.b.svc.cluster.local svc.cluster.local", None),  # no namespace has a dot
        ("", None),
    ],
)
def test_the_search_list_names_the_pods_namespace_only_as_kubelet_writes_it(
    search: str, found: tuple[str, str] | None
) -> None:
    assert parse_resolv_conf(search).pod_domain() == found


@given(
    st.sampled_from(["a", "a-b", "0", "-a", "a-", "a" * 63, "a" * 64, "", "ab\n", "A"])
    | st.text(alphabet="az09-A.é٣\n ", max_size=65)
)
def test_a_dns_label_is_exactly_what_kubernetes_pattern_says(text: str) -> None:
    """``is_dns_label`` tests characters (a compiled pattern cost every start 0.8 million
    instructions): exactly Kubernetes' DNS-1123 label, ``[a-z0-9]([-a-z0-9]*[a-z0-9])?`` whole
    and at most 63 characters (a trailing newline too is refused, which ``$`` let through)."""
    label = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
    assert is_dns_label(text) == (len(text) <= 63 and bool(re.fullmatch(label, text)))
