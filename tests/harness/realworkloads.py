"""Real distributed workloads behind peer-agent in the cluster in a box: torchrun and Open MPI.

Each workload's ranks run an all-reduce and print one line per rank,

    allreduce ok rank=R world=W sum=S at=T

with T the time.monotonic() (one clock for every pod on the node) when the first collective
completed, so the end-to-end tests, the demo and the timing script read the same evidence.
The training and MPI programs are images' files here: `tests/harness/apps` is bind-mounted at
/app (see ClusterOptions.image_files), as a real workload image would carry them.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from tests.harness import workload
from tests.harness.cluster import Cluster
from tests.harness.install import REPO
from tests.harness.jobrun import JobRun
from tests.harness.variants import with_args, with_command, with_env
from tests.harness.workload import Workload

__all__ = [
    "APPS",
    "MPI_EXAMPLE",
    "TORCHRUN_EXAMPLE",
    "Collective",
    "collectives",
    "mpi_image_files",
    "torch_image_files",
    "torchrun_alone",
    "torchrun_behind_agent",
    "with_ssh_key",
]

APPS = Path(__file__).parent / "apps"
SEED_EXAMPLE = REPO / "k8s" / "examples" / "seed"
TORCHRUN_EXAMPLE = REPO / "k8s" / "examples" / "torchrun"
MPI_EXAMPLE = REPO / "k8s" / "examples" / "mpi-init"
TORCH_PORT = 29500
_LINE = re.compile(r"allreduce ok rank=(\d+) world=(\d+) sum=(\S+) at=([\d.]+)")

# What `torchrun` needs on torch 1.13 (Debian's python3-torch) and on newer torch alike: the
# underscore flags, and --redirects/--tee (1.13's launcher crashes on Python 3.11 without them).
TORCHRUN = (
    "exec torchrun --nnodes={nodes} --node_rank={rank} --nproc_per_node=1 "
    "--master_addr={master} --master_port=29500 --redirects=2 --tee=2 /app/train.py"
)


@dataclass(frozen=True)
class Collective:
    """One rank's report of its first all-reduce."""

    rank: int
    world: int
    total: float
    at: float  # time.monotonic() when it completed


def collectives(cluster: Cluster, run: JobRun, container: str | None = None) -> list[Collective]:
    """Every rank's all-reduce line in the logs of the Job's newest pods."""
    found = []
    for i in range(run.job.completions):
        for line in cluster.logs(run.pod(i), container).splitlines():
            match = _LINE.search(line)
            if match:
                rank, world, total, at = match.groups()
                found.append(Collective(int(rank), int(world), float(total), float(at)))
    return found


def torch_image_files() -> tuple[tuple[str, Path, str], ...]:
    """The training script where a training image has it (and the seed example's image)."""
    return (("torch-workload", APPS / "torch", "/app"), ("peer-agent", APPS / "torch", "/app"))


def mpi_image_files() -> tuple[tuple[str, Path, str], ...]:
    """The MPI image's program (Open MPI, OpenSSH and mpi4py are this machine's own)."""
    return (("mpi-workload", APPS / "mpi", "/app"),)


def with_ssh_key(wl: Workload, secret: str = "example-job-ssh") -> Workload:
    """``wl`` and the Secret the MPI example's header has users create: a fresh ed25519 key
    pair as ``id_ed25519`` and ``authorized_keys`` (made by this machine's ssh-keygen)."""
    with tempfile.TemporaryDirectory() as keys:
        key = Path(keys) / "id_ed25519"
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "box", "-f", str(key)],
            check=True,
            timeout=30,
        )
        items = (
            ("authorized_keys", key.with_suffix(".pub").read_text()),
            ("id_ed25519", key.read_text()),
        )
    return replace(wl, secrets=(*wl.secrets, (secret, items)))


def torchrun_behind_agent(timeout: str = "120s") -> Workload:
    """The seed example's pods running `peer-agent run -- torchrun ... /app/train.py`."""
    command = TORCHRUN.format(nodes='"$WORLD_SIZE"', rank='"$RANK"', master='"$MASTER_ADDR"')
    seed = with_env(workload.load(SEED_EXAMPLE), "PEER_AGENT_TIMEOUT", timeout)
    return with_args(seed, "peer-agent", ("run", "--", "sh", "-c", command))


def torchrun_alone() -> Workload:
    """The same pods running torchrun without the agent: torch finds the master by itself.

    MASTER_ADDR is pod 0's name as Kubernetes publishes it; torch's static rendezvous retries
    while that name does not resolve or nobody listens yet.
    """
    master = "example-job-0.example-peers"
    command = TORCHRUN.format(nodes=3, rank='"$JOB_COMPLETION_INDEX"', master=master)
    seed = workload.load(SEED_EXAMPLE)
    return with_command(seed, "peer-agent", ("sh", "-c", command))
