"""The start line says where each derived value came from, truthfully: a flag, a variable (the
user's or a controller's), a file of the pod, or derived from another value. Read from the
config as ``load_config`` builds it from flags and a pod's facts, and from the start line the
core makes of it."""

from __future__ import annotations

import pytest

from agent.config.model import Config
from agent.config.parse import load_config
from agent.core.discovery import ByName
from agent.core.reach import Reach
from agent.core.status import Status
from agent.topology.podfiles import FileRead, PodFacts
from agent.topology.sources import (
    HOSTNAME,
    HOSTS_FILE,
    RESOLV_CONF,
    SA_NAMESPACE,
    Origin,
    Source,
    Sources,
)

pytestmark = pytest.mark.timeout(10)

HOSTS = "10.0.0.2\texample-job-1.svc.team-a.svc.cluster.local\texample-job-1\n"
RESOLV = "search team-b.svc.example.org svc.example.org example.org\nnameserver 10.96.0.10\n"


def flag(name: str) -> Source:
    return Source(Origin.FLAG, name)


def variable(name: str) -> Source:
    return Source(Origin.VARIABLE, name)


def _config(
    flags: dict[str, str | None],
    environ: dict[str, str],
    hostname: str = "example-job-1",
    **facts: object,
) -> Config:
    pod = PodFacts(hostname=hostname, environ=environ, **facts)  # type: ignore[arg-type]
    return load_config("wait", flags, pod)


def _start_line(config: Config) -> str:
    reach = Reach(config.topology.peers, now=0.0, rand=lambda: 0.5)
    return Status(config, reach, ByName(reach), None).start_line().message


def test_an_index_passed_as_a_flag_is_not_said_to_be_a_variable() -> None:
    """The start line said "JOB_COMPLETION_INDEX is set" with --index passed and no such
    variable."""
    config = _config({"index": "1", "peers": "3"}, {}, hosts=HOSTS)
    line = _start_line(config)
    assert "topology indexed-job (--index is given: an Indexed Job pod)" in line
    assert "JOB_COMPLETION_INDEX" not in line
    assert line.endswith(
        "; peers from --peers; index from --index; job from the hostname; service, namespace "
        "and zone from /etc/hosts"
    ), line


def test_the_variables_kubernetes_and_the_user_set_are_named_as_variables() -> None:
    environ = {"JOB_COMPLETION_INDEX": "1", "PEER_AGENT_PEERS": "3"}
    config = _config({}, environ, hosts=HOSTS)
    line = _start_line(config)
    assert "topology indexed-job (JOB_COMPLETION_INDEX is set: an Indexed Job pod)" in line
    assert "; peers from PEER_AGENT_PEERS; index from JOB_COMPLETION_INDEX;" in line
    assert config.topology.sources.index == variable("JOB_COMPLETION_INDEX")


def test_a_flag_over_a_variable_is_said_to_be_the_flag() -> None:
    environ = {"JOB_COMPLETION_INDEX": "1", "PEER_AGENT_PEERS": "3"}
    config = _config({"peers": "3"}, environ, hosts=HOSTS)
    assert config.topology.sources.peers == flag("--peers")
    assert config.topology.sources.index == variable("JOB_COMPLETION_INDEX")


LWS = {"LWS_LEADER_ADDRESS": "vllm-1.vllm.team-a", "LWS_GROUP_SIZE": "4", "LWS_WORKER_INDEX": "2"}
TRAINER = {
    "PET_NNODES": "3",
    "PET_NODE_RANK": "2",
    "PET_MASTER_ADDR": "mnist-node-0-0.mnist",
    "JOB_COMPLETION_INDEX": "2",
}
PYTORCHJOB = {"PET_NNODES": "3", "PET_NODE_RANK": "2", "PET_MASTER_ADDR": "pt-master-0"}
TF_CONFIG = (
    '{"cluster": {"chief": ["tf-chief-0.ml.svc:2222"], "worker": ["tf-worker-0.ml.svc:2222"]},'
    ' "task": {"type": "worker", "index": 0}}'
)

# (what the pod has: flags, variables, hostname, files) and where each value came from
SOURCES = [
    pytest.param(
        {},
        {"JOB_COMPLETION_INDEX": "1", "PEER_AGENT_PEERS": "3", "PEER_AGENT_NAMESPACE": "ns"},
        "example-job-1",
        {"hosts": HOSTS},
        Sources(
            peers=variable("PEER_AGENT_PEERS"),
            index=variable("JOB_COMPLETION_INDEX"),
            job=HOSTNAME,
            service=HOSTS_FILE,
            namespace=variable("PEER_AGENT_NAMESPACE"),
            zone=HOSTS_FILE,
        ),
        id="indexed-job",
    ),
    pytest.param(
        {"service": "svc", "job_name": "example-job", "cluster_domain": "example.org"},
        {"JOB_COMPLETION_INDEX": "1", "PEER_AGENT_PEERS": "3"},
        "example-job-1",
        {"sa_namespace": "team-a"},
        Sources(
            peers=variable("PEER_AGENT_PEERS"),
            index=variable("JOB_COMPLETION_INDEX"),
            job=flag("--job-name"),
            service=flag("--service"),
            namespace=SA_NAMESPACE,
            zone=flag("--cluster-domain"),
        ),
        id="no-hosts-line-namespace-from-the-service-account",
    ),
    pytest.param(
        {"service": "svc"},
        {"JOB_COMPLETION_INDEX": "1", "PEER_AGENT_PEERS": "3"},
        "example-job-1",
        {"resolv_conf": RESOLV},
        Sources(
            peers=variable("PEER_AGENT_PEERS"),
            index=variable("JOB_COMPLETION_INDEX"),
            job=HOSTNAME,
            service=flag("--service"),
            namespace=RESOLV_CONF,
            zone=RESOLV_CONF,
        ),
        id="no-hosts-line-namespace-and-zone-from-resolv-conf",
    ),
    pytest.param(
        {"service": "svc", "namespace": "ns"},
        {"JOB_COMPLETION_INDEX": "1", "PEER_AGENT_PEERS": "3"},
        "example-job-1",
        {},
        Sources(
            peers=variable("PEER_AGENT_PEERS"),
            index=variable("JOB_COMPLETION_INDEX"),
            job=HOSTNAME,
            service=flag("--service"),
            namespace=flag("--namespace"),
            zone=Source(Origin.DEFAULT, "the default"),
        ),
        id="zone-by-default",
    ),
    pytest.param(
        {},
        {"JOB_COMPLETION_INDEX": "3", "PEER_AGENT_REPLICATED_JOBS": "driver=1x1,workers=1x4"},
        "train-workers-0-3",
        {"hosts": "10.0.0.5\ttrain-workers-0-3.train.ns.svc.cluster.local\ttrain-workers-0-3\n"},
        Sources(
            peers=variable("PEER_AGENT_REPLICATED_JOBS"),
            index=HOSTNAME,
            job=Source(Origin.DERIVED, "the Service's name"),
            service=HOSTS_FILE,
            namespace=HOSTS_FILE,
            zone=HOSTS_FILE,
        ),
        id="jobset",
    ),
    pytest.param(
        {},
        LWS,
        "vllm-1-2",
        {"resolv_conf": RESOLV},
        Sources(
            peers=variable("LWS_GROUP_SIZE"),
            index=variable("LWS_WORKER_INDEX"),
            job=variable("LWS_LEADER_ADDRESS"),
            service=variable("LWS_LEADER_ADDRESS"),
            namespace=variable("LWS_LEADER_ADDRESS"),
            zone=RESOLV_CONF,
        ),
        id="lws",
    ),
    pytest.param(
        {"peers": "3"},
        TRAINER,
        "mnist-node-0-2",
        {"resolv_conf": RESOLV},
        Sources(
            peers=flag("--peers"),
            index=variable("JOB_COMPLETION_INDEX"),  # the option's, read first
            job=variable("PET_MASTER_ADDR"),
            service=variable("PET_MASTER_ADDR"),
            namespace=RESOLV_CONF,
            zone=RESOLV_CONF,
        ),
        id="trainer",
    ),
    pytest.param(
        {},
        PYTORCHJOB,
        "pt-worker-1",
        {"resolv_conf": RESOLV},
        Sources(
            peers=variable("PET_NNODES"),
            index=HOSTNAME,
            job=HOSTNAME,
            namespace=RESOLV_CONF,
            zone=RESOLV_CONF,
        ),
        id="pytorchjob",
    ),
    pytest.param(
        {"peers": "4"},
        {"PET_NNODES": "2:4", "PET_MASTER_ADDR": ""},
        "pt-worker-1",
        {"resolv_conf": RESOLV},
        Sources(
            peers=flag("--peers"),
            index=HOSTNAME,
            job=HOSTNAME,
            namespace=RESOLV_CONF,
            zone=RESOLV_CONF,
        ),
        id="pytorchjob-elastic-range",
    ),
    pytest.param(
        {},
        {"TF_CONFIG": TF_CONFIG},
        "tf-worker-0",
        {"resolv_conf": RESOLV},
        Sources(
            peers=variable("TF_CONFIG"),
            index=HOSTNAME,
            job=HOSTNAME,
            namespace=variable("TF_CONFIG"),
            zone=RESOLV_CONF,
        ),
        id="tfjob",
    ),
    pytest.param(
        {"peers_from": "/etc/mpi/hostfile", "probe": "tcp:22"},
        {},
        "pi-launcher",
        {
            "files": {"/etc/mpi/hostfile": FileRead(b"pi-worker-0.pi slots=1\n")},
            "resolv_conf": RESOLV,
        },
        Sources(
            peers=Source(Origin.POD_FILE, "/etc/mpi/hostfile"),
            job=Source(Origin.DERIVED, "the names in /etc/mpi/hostfile"),
            service=Source(Origin.DERIVED, "the names in /etc/mpi/hostfile"),
            namespace=RESOLV_CONF,
            zone=RESOLV_CONF,
        ),
        id="mpi-launcher-hostfile",
    ),
    pytest.param(
        {},
        {"VC_WORKER_HOSTS": "vj-worker-0.vj,vj-worker-1.vj", "VC_WORKER_NUM": "2"},
        "vj-worker-1",
        {"resolv_conf": RESOLV},
        Sources(
            peers=variable("VC_WORKER_HOSTS"),
            index=Source(Origin.DERIVED, "this pod's line in VC_WORKER_HOSTS"),
            job=Source(Origin.DERIVED, "the names in VC_WORKER_HOSTS"),
            service=Source(Origin.DERIVED, "the names in VC_WORKER_HOSTS"),
            namespace=RESOLV_CONF,
            zone=RESOLV_CONF,
        ),
        id="volcano",
    ),
]


@pytest.mark.parametrize(("flags", "environ", "hostname", "facts", "expected"), SOURCES)
def test_each_value_records_where_it_came_from(
    flags: dict[str, str | None],
    environ: dict[str, str],
    hostname: str,
    facts: dict[str, object],
    expected: Sources,
) -> None:
    config = _config(flags, environ, hostname, **facts)
    assert config.topology.sources == expected
    line = _start_line(config)
    assert line.endswith(f"; {expected.describe()}"), line


def test_json_start_lines_carry_the_sources_as_fields() -> None:
    config = _config({"index": "1"}, {"PEER_AGENT_PEERS": "3"}, hosts=HOSTS)
    reach = Reach(3, now=0.0, rand=lambda: 0.5)
    fields = Status(config, reach, ByName(reach), None).start_line().fields
    assert fields["sources"]["index"] == {"origin": "flag", "name": "--index"}
    assert fields["sources"]["peers"] == {"origin": "variable", "name": "PEER_AGENT_PEERS"}
    assert fields["sources"]["zone"] == {"origin": "pod file", "name": "/etc/hosts"}
