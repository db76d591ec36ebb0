"""The YAML a user writes becomes the description the harness runs."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from tests.harness import kubelet_files, workload
from tests.harness.containers import argv_of, expand, setpriv_argv
from tests.harness.workload import DNSConfig, Security

HERE = Path(__file__).parent
REPO = HERE.parents[1]
SEED_DOC = Path("/work/shared/seed/000_dd061ab07572a6e1.txt")
#: the seed document's Service-and-Job block (leading newlines dropped), as it was copied
SEED_MANIFEST_SHA256 = "c1165ae3d96dcc784507cd415b93694c71695b9670499485e17daa66e124a963"
SEED_MANIFEST_LENGTH = 1246


def test_seed_example_parses() -> None:
    w = workload.load(HERE / "workloads" / "seed.yaml")
    job = w.job("example-job")
    assert (job.completions, job.parallelism, job.completion_mode) == (3, 3, "Indexed")
    assert job.template.subdomain == "headless-svc"
    svc = w.service_for(job)
    assert svc is not None and svc.headless and not svc.publish_not_ready_addresses
    [container] = job.template.containers
    assert container.image == "bash:latest" and container.command[:2] == ("bash", "-c")
    assert "ping -c 1 example-job-${i}.headless-svc" in container.command[2]


def test_seed_copy_is_unchanged() -> None:
    """The copy ends with the seed's own manifest, byte for byte: checked against the digest of
    the seed's block (a clean clone has no seed document beside it), and against the document
    itself where it is there."""
    copy = (HERE / "workloads" / "seed.yaml").read_text()
    tail = copy[len(copy) - SEED_MANIFEST_LENGTH :]
    assert hashlib.sha256(tail.encode()).hexdigest() == SEED_MANIFEST_SHA256
    if SEED_DOC.exists():
        blocks = re.findall(r"```yaml\n(.*?)```", SEED_DOC.read_text(), re.S)
        [original] = [b for b in blocks if "kind: Service" in b]
        assert tail == original.lstrip("\n")


def test_shipped_seed_example_renders() -> None:
    w = workload.load(REPO / "k8s" / "examples" / "seed")
    job = w.job()
    svc = w.service_for(job)
    assert svc is not None and svc.publish_not_ready_addresses
    [port] = svc.ports
    assert (port.name, port.target_port) == ("peer-agent", 29300)
    [container] = job.template.containers
    assert argv_of(container, {})[:2] == ["peer-agent", "run"]
    fields = {e.field_path for e in container.env if e.field_path}
    assert "metadata.labels['batch.kubernetes.io/controller-uid']" in fields


def test_env_expansion_and_image_entrypoints() -> None:
    assert expand("$(A)-$(B)-$$(A)", {"A": "1"}) == "1-$(B)-$(A)"
    text = """
apiVersion: batch/v1
kind: Job
metadata: {name: j}
spec:
  completionMode: Indexed
  completions: 2
  template:
    spec:
      initContainers:
        - {name: side, image: peer-agent:0.1.0, args: [sidecar], restartPolicy: Always}
      containers:
        - {name: c, image: busybox, args: ["echo", "$(JOB_COMPLETION_INDEX)"]}
"""
    job = workload.parse(text).job()
    assert job.template.init_containers[0].is_sidecar
    assert argv_of(job.template.containers[0], {"JOB_COMPLETION_INDEX": "1"}) == ["echo", "1"]
    assert argv_of(job.template.init_containers[0], {}) == ["peer-agent", "sidecar"]


def test_security_becomes_setpriv() -> None:
    argv = setpriv_argv(Security(run_as_user=65532, run_as_group=65532, drop=("ALL",)))
    assert "--bounding-set=-all" in argv and "--reuid=65532" in argv
    assert "+net_raw" in " ".join(setpriv_argv(Security()))
    assert "+net_raw" not in " ".join(setpriv_argv(Security(drop=("NET_RAW",))))


def test_kubelet_files() -> None:
    hosts = kubelet_files.hosts("198.18.1.1", "j-0", "svc", "default", "cluster.local")
    assert hosts.endswith("198.18.1.1\tj-0.svc.default.svc.cluster.local\tj-0\n")
    assert hosts.startswith("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n")
    node = "nameserver 198.18.0.53\nsearch node.internal\n"
    args = {"namespace": "ns", "zone": "cluster.local", "cluster_dns": "198.18.0.10"}
    first = kubelet_files.resolv_conf("ClusterFirst", DNSConfig(), node_resolv=node, **args)
    assert first == (
        "search ns.svc.cluster.local svc.cluster.local cluster.local node.internal\n"
        "nameserver 198.18.0.10\noptions ndots:5\n"
    )
    default = kubelet_files.resolv_conf("Default", DNSConfig(), node_resolv=node, **args)
    assert default == "search node.internal\nnameserver 198.18.0.53\n"
    none = kubelet_files.resolv_conf(
        "None",
        DNSConfig(nameservers=("198.18.0.10",), options=(("ndots", "2"),)),
        node_resolv=node,
        **args,
    )
    assert none == "nameserver 198.18.0.10\noptions ndots:2\n"


def test_a_pytorchjob_becomes_what_the_training_operator_makes() -> None:
    """A pod and a Service of its own per replica, no subdomain, the operator's variables in
    containers only, its init-pytorch in the workers (tests/harness/training_operator.py)."""
    w = workload.load(REPO / "k8s" / "examples" / "pytorchjob" / "pytorchjob.yaml")
    assert [j.name for j in w.jobs] == ["mnist-master-0", "mnist-worker-0", "mnist-worker-1"]
    for rank, job in enumerate(w.jobs):
        svc = w.service_for(job)
        assert svc is not None and svc.name == job.name == job.hostname(0)
        assert svc.headless and not svc.publish_not_ready_addresses
        assert job.template.subdomain is None
        env = {e.name: e.value for e in job.template.containers[0].env}
        assert (env["PET_NODE_RANK"], env["PET_NNODES"]) == (str(rank), "3")
        assert env["PET_MASTER_ADDR"] == env["MASTER_ADDR"] == "mnist-master-0"
        inits = job.template.init_containers
        assert all(not any(e.name.startswith("PET_") for e in c.env) for c in inits)
        assert [c.name for c in inits] == ["copy-peer-agent"] + ["init-pytorch"] * (rank > 0)
