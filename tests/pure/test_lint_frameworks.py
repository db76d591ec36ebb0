"""`peer-agent lint` on each framework: the shipped examples are clean, each mis-wiring is named."""

from __future__ import annotations

import copy
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.lint import lint_documents, lint_paths

pytestmark = pytest.mark.timeout(30)

EXAMPLES = Path(__file__).resolve().parents[2] / "k8s" / "examples"
FILES = {
    "jobset": "jobset/jobset.yaml",
    "jobset-10k": "jobset-10k/jobset.yaml",
    "lws": "lws/leaderworkerset.yaml",
    "trainer": "trainer/trainjob.yaml",
    "mpi": "mpi-operator/mpijob.yaml",
    "volcano": "volcano/vcjob.yaml",
    "pytorchjob": "pytorchjob/pytorchjob.yaml",
}
Doc = dict[str, Any]


_parsed: dict[str, list[Doc]] = {}  # parsed once: the wrong-type test takes a copy per field


def _docs(name: str) -> list[Doc]:
    # A deep copy: the examples share pod templates through YAML anchors.
    if name not in _parsed:
        _parsed[name] = [d for d in yaml.safe_load_all((EXAMPLES / FILES[name]).read_text()) if d]
    return copy.deepcopy(_parsed[name])


def _lint(docs: list[Doc]) -> list[str]:
    return [
        f"{f.obj}: {f.field}: {f.message}; fix: {f.fix}" for f in lint_documents(docs, source="x")
    ]


@pytest.mark.parametrize("name", FILES)
def test_the_shipped_example_is_clean(name: str) -> None:
    assert _lint(_docs(name)) == []


# Parsed YAML is Any all the way down: each helper names the type of what it reaches.
def _js_pod(d: Doc, rjob: int = 1) -> Doc:
    pod: Doc = d["spec"]["replicatedJobs"][rjob]["template"]["spec"]["template"]["spec"]
    return pod


def _js_env(d: Doc, rjob: int = 1) -> list[Doc]:
    env: list[Doc] = _js_pod(d, rjob)["initContainers"][0]["env"]
    return env


def _set_env(env: list[Doc], name: str, value: str | None) -> None:
    env[:] = [e for e in env if e["name"] != name]
    if value is not None:
        env.append({"name": name, "value": value})


def _lws_init(d: Doc) -> Doc:
    init: Doc = d["spec"]["leaderWorkerTemplate"]["workerTemplate"]["spec"]["initContainers"][0]
    return init


def _mpi_init(d: Doc) -> Doc:
    init: Doc = d["spec"]["mpiReplicaSpecs"]["Launcher"]["template"]["spec"]["initContainers"][0]
    return init


def _vc_init(d: Doc) -> Doc:
    init: Doc = d["spec"]["tasks"][0]["template"]["spec"]["initContainers"][0]
    return init


def _unique_pods(d: Doc) -> None:
    """Untie the YAML anchor so that one replicatedJob can differ."""
    d["spec"]["replicatedJobs"][1]["template"]["spec"]["template"]["spec"] = copy.deepcopy(
        _js_pod(d)
    )


Change = Callable[[list[Doc]], None]


def _shape(value: str | None, *, untie: bool = False) -> Change:
    def change(ds: list[Doc]) -> None:
        if untie:
            _unique_pods(ds[0])
        _set_env(_js_env(ds[0]), "PEER_AGENT_REPLICATED_JOBS", value)

    return change


def _bundled(ds: list[Doc]) -> None:
    """A workload image that bundles the zipapp: no peer-agent image, command or args."""
    _js_pod(ds[0])["initContainers"][0].update(image="my-trainer:1", args=[])
    _set_env(_js_env(ds[0]), "PEER_AGENT_REPLICATED_JOBS", "driver=1x1,workers=2x3")


def _vc_from(path: str) -> Change:
    return lambda ds: _set_env(_vc_init(ds[0]).setdefault("env", []), "PEER_AGENT_PEERS_FROM", path)


def _pt_specs(d: Doc) -> Doc:
    specs: Doc = d["spec"]["pytorchReplicaSpecs"]
    return specs


def _pt_pod(d: Doc, rtype: str = "Worker", *, untie: bool = False) -> Doc:
    """A replica type's pod spec; ``untie`` gives it its own copy of the shared template."""
    if untie:
        _pt_specs(d)[rtype]["template"] = copy.deepcopy(_pt_specs(d)[rtype]["template"])
    pod: Doc = _pt_specs(d)[rtype]["template"]["spec"]
    return pod


def _pt_trainer(d: Doc, rtype: str = "Worker", *, untie: bool = False) -> Doc:
    trainer: Doc = _pt_pod(d, rtype, untie=untie)["containers"][0]
    return trainer


def _pt_without_agent(ds: list[Doc]) -> None:
    _pt_trainer(ds[0], untie=True).update(command=["torchrun", "/app/train.py"], args=[])


def _pt_in_init(ds: list[Doc]) -> None:
    _pt_trainer(ds[0]).update(command=["torchrun", "/app/train.py"], args=[])
    _pt_pod(ds[0])["initContainers"][0].update(command=[], args=["wait"])


def _as_kind(kind: str, field: str, **spec: Any) -> Change:
    """The PyTorchJob example as another v1 kind with the same replica types."""

    def change(ds: list[Doc]) -> None:
        ds[0].update(kind=kind)
        ds[0]["spec"] = {field: ds[0]["spec"]["pytorchReplicaSpecs"], **spec}

    return change


BROKEN: list[Any] = [
    ("jobset", _shape(None), "env: JobSet gives a pod no pod count",
     'PEER_AGENT_REPLICATED_JOBS: "driver=1x1,workers=2x2"'),
    ("jobset", _shape("driver=1x1,workers=2x3"),
     "says workers=2x3, but the spec has 2 replicas of 2 pods", "workers=2x2"),
    ("jobset", _shape("workers=2x2,driver=1x1"), "out of spec order", "driver=1x1,workers=2x2"),
    ("jobset", _shape("workers=2"), "not NAME=REPLICASxPODS", ""),
    ("jobset", _shape("driver=1x1", untie=True),
     "does not list this pod's replicatedJob 'workers'", ""),
    ("jobset", lambda ds: _js_env(ds[0])[1]["valueFrom"]["fieldRef"].update(
        fieldPath="metadata.labels['batch.kubernetes.io/controller-uid']"),
     "env[PEER_AGENT_JOB_UID]: takes the child Job's controller-uid", "jobset-uid"),
    ("jobset", lambda ds: ds[0]["spec"].update(network={"publishNotReadyAddresses": False}),
     "spec.network.publishNotReadyAddresses: is false", ""),
    ("jobset", lambda ds: ds[0]["metadata"].update(name="t" * 55),
     "metadata.name: the pod hostname", "shorten"),
    ("jobset", _bundled, "says workers=2x3", ""),  # found by its PEER_AGENT_* variables alone
    ("lws", lambda ds: _lws_init(ds[0]).update(env=[{"name": "PEER_AGENT_PEERS", "value": "4"}]),
     "says 4 peers, but the group size is 3", "LWS_GROUP_SIZE"),
    ("lws", lambda ds: ds[0]["spec"]["leaderWorkerTemplate"].update(
        leaderTemplate={"spec": {"containers": [{"name": "server", "image": "vllm:1"}]}}),
     "leaderTemplate: runs no peer-agent, but the other template does", ""),
    ("trainer", lambda ds: ds[0]["spec"]["mlPolicy"]["torch"].pop("envInjection"),
     "Trainer injects PET_* only into the 'node' container", "containerNames: [peer-agent]"),
    ("trainer", lambda ds: ds[1]["metadata"].update(name="m" * 60),
     "metadata.name: the pod hostname", ""),
    ("mpi", lambda ds: _mpi_init(ds[0]).pop("volumeMounts"),
     "does not mount the operator's ConfigMap", "mpi-job-config"),
    ("mpi", lambda ds: _set_env(_mpi_init(ds[0])["env"], "PEER_AGENT_PROBE", None),
     "never answer peer-agent's hello", "tcp:22"),
    ("mpi", lambda ds: _set_env(_mpi_init(ds[0])["env"], "PEER_AGENT_PEERS_FROM", None),
     "must wait one-sided", "PEER_AGENT_PEERS_FROM: /etc/mpi/hostfile"),
    ("mpi", lambda ds: ds[0]["spec"].update(runLauncherAsWorker=True),
     "finds itself among the peers", "PEER_AGENT_BARRIER: none"),
    ("volcano", lambda ds: ds[0]["spec"]["plugins"].update(svc=[]),
     "spec.plugins.svc: does not publish not-ready pods", "--publish-not-ready-addresses=true"),
    ("volcano", lambda ds: ds[0]["spec"].pop("plugins"), "has no svc plugin", ""),
    ("volcano", _vc_from("/etc/volcano/ps.host"), "is /etc/volcano/ps.host",
     "/etc/volcano/worker.host"),
    ("volcano", lambda ds: ds[0]["spec"].update(minAvailable=1), "spec.minAvailable: is below", ""),
    ("volcano", lambda ds: ds[0]["spec"]["plugins"]["svc"].append("--inject-hosts-env=false"),
     "is unset (and the svc plugin injects no VC_*_HOSTS)", "/etc/volcano/worker.host"),
    ("pytorchjob", _pt_without_agent,
     "Worker.template.spec.containers: runs no peer-agent, but Master does",
     "run peer-agent in the Worker pods too"),
    ("pytorchjob", _pt_in_init, "copy-peer-agent]: runs peer-agent in an init container",
     "peer-agent run --exit-barrier"),
    ("pytorchjob", lambda ds: _pt_trainer(ds[0]).update(
        env=[{"name": "PEER_AGENT_PEERS", "value": "2"}]),
     "says 2 peers, but the job has 3 pods", "the operator gives the pod count"),
    ("pytorchjob", lambda ds: ds[0]["metadata"].update(name="p" * 55),
     "metadata.name: the pod hostname 'ppppp", "shorten"),
    ("pytorchjob", lambda ds: _pt_trainer(ds[0])["args"].remove("--exit-barrier"),
     "args: runs without --exit-barrier", "run --exit-barrier -- torchrun"),
    ("pytorchjob", lambda ds: ds[0]["spec"].update(
        elasticPolicy={"minReplicas": 1, "maxReplicas": 3}),
     "spec.elasticPolicy: lets the workers number 1 to 3", "minReplicas = maxReplicas"),
    ("pytorchjob", _as_kind("TFJob", "tfReplicaSpecs", enableDynamicWorker=True),
     "TF_CONFIG then lists only the pod's own part", "remove it"),
    ("pytorchjob", _as_kind("PaddleJob", "paddleReplicaSpecs"),
     "makes a parameter-server PaddleJob", "collective PaddleJob (Worker only)"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "change", "message", "fix"),
    BROKEN,
    ids=[f"{b[0]}-{i}" for i, b in enumerate(BROKEN)],
)
def test_each_mis_wiring_is_named_with_its_fix(
    name: str, change: Change, message: str, fix: str
) -> None:
    docs = _docs(name)
    change(docs)
    found = [f for f in _lint(docs) if message in f]
    assert found, _lint(docs)
    assert fix in found[0].split("; fix: ", 1)[1]


def _paths(node: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    children: list[tuple[Any, Any]] = []
    if isinstance(node, dict):
        children = list(node.items())
    elif isinstance(node, list):
        children = list(enumerate(node))
    return [at] + [p for k, v in children for p in _paths(v, (*at, k))]


@pytest.mark.timeout(120)  # every field of an example, three times: 5-12 s on a busy machine
@pytest.mark.parametrize("name", FILES)
def test_any_field_of_the_wrong_type_is_findings_or_silence(name: str) -> None:
    """A user's YAML: every field of every example, replaced by a list, a number or text, is
    linted without an exception."""
    wrong: object
    for path in _paths(_docs(name))[1:]:
        for wrong in ([], 7, "x"):
            docs = _docs(name)
            node: Any = docs
            for key in path[:-1]:
                node = node[key]
            node[path[-1]] = wrong
            lint_documents([d for d in docs if isinstance(d, dict)], source="x")


def test_a_pytorchjob_is_checked_not_refused(tmp_path: Path) -> None:
    """`peer-agent lint` on a PyTorchJob used to answer "no Job or Service found" (exit 2)."""
    report = lint_paths([str(EXAMPLES / FILES["pytorchjob"])], stdin=io.StringIO())
    assert (report.checked, report.findings) == (1, ())
    docs = _docs("pytorchjob")
    _pt_without_agent(docs)
    (tmp_path / "job.yaml").write_text(yaml.safe_dump_all(docs))
    report = lint_paths([str(tmp_path / "job.yaml")], stdin=io.StringIO())
    assert [f.severity for f in report.findings] == ["error"]
