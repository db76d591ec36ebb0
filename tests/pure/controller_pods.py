"""Pods as each controller makes them (hostname, subdomain, injected variables, files): the
inputs of the topology scenario tables."""

from __future__ import annotations

from dataclasses import dataclass, field

from agent.topology.podfiles import FileRead, PodFacts

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

# Kubeflow Training Operator v1: the variables its controllers put into every container
# (pkg/controller.v1/<kind>/envvar.go); no subdomain, so no FQDN line in /etc/hosts.
PYTORCHJOB = Pod(  # Master + 2 Workers: worker 1 is rank 2
    "pt-worker-1",
    env={
        "MASTER_ADDR": "pt-master-0",
        "MASTER_PORT": "23456",
        "PET_MASTER_ADDR": "pt-master-0",
        "PET_MASTER_PORT": "23456",
        "WORLD_SIZE": "3",
        "RANK": "2",
        "PET_NODE_RANK": "2",
        "PET_NNODES": "3",
        "PYTHONUNBUFFERED": "1",
    },
)
PYTORCHJOB_ELASTIC = Pod(  # Workers only, elasticPolicy defaulted to min = max = replicas
    "pt-worker-1",
    env={"PET_NNODES": "4:4", "PET_RDZV_ENDPOINT": "pt-worker-0:23456", "PET_RDZV_BACKEND": "c10d"},
)
TF_CONFIG = (
    '{"cluster":{"chief":["tf-chief-0.ml.svc:2222"],"ps":["tf-ps-0.ml.svc:2222"],'
    '"worker":["tf-worker-0.ml.svc:2222","tf-worker-1.ml.svc:2222"]},'
    '"task":{"type":"worker","index":1},"environment":"cloud"}'
)
TFJOB = Pod("tf-worker-1", env={"TF_CONFIG": TF_CONFIG})
JAXJOB = Pod(
    "jx-worker-2",
    env={"COORDINATOR_ADDRESS": "jx-worker-0", "NUM_PROCESSES": "4", "PROCESS_ID": "2"},
)
XGBOOSTJOB = Pod("xg-worker-0", env={"MASTER_ADDR": "xg-master-0", "WORLD_SIZE": "3", "RANK": "1"})
PADDLEJOB = Pod("pd-worker-1", env={"PADDLE_NNODES": "2", "PADDLE_JOB_ID": "pd"})

# pod, kind, reason fragment, job, peers, index, fqdn(0), fqdn(last), service_fqdn
