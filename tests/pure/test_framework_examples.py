"""The framework examples against the projects' published CRD schemas (k8s/crds), strictly."""

from __future__ import annotations

import copy
import gzip
import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

pytestmark = pytest.mark.timeout(60)

K8S = Path(__file__).resolve().parents[2] / "k8s"
FRAMEWORKS = {
    "jobset": "jobset.yaml",
    "jobset-10k": "jobset.yaml",
    "lws": "leaderworkerset.yaml",
    "trainer": "trainjob.yaml",
    "mpi-operator": "mpijob.yaml",
    "volcano": "vcjob.yaml",
    "pytorchjob": "pytorchjob.yaml",
}


def _strict(schema: Any) -> Any:
    """Unknown fields are errors: the API server would prune them without a word."""
    if isinstance(schema, dict):
        schema = {k: _strict(v) for k, v in schema.items()}
        if "properties" in schema and not schema.get("x-kubernetes-preserve-unknown-fields"):
            schema.setdefault("additionalProperties", False)
    elif isinstance(schema, list):
        schema = [_strict(v) for v in schema]
    return schema


@cache
def _schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) → strict schema, for every served version."""
    out = {}
    for path in sorted((K8S / "crds").glob("*.json.gz")):
        crd = json.loads(gzip.decompress(path.read_bytes()))
        for version, entry in crd["versions"].items():
            if entry["served"]:
                out[(f"{crd['group']}/{version}", crd["kind"])] = _strict(entry["schema"])
    return out


def _docs(framework: str) -> list[dict[str, Any]]:
    text = (K8S / "examples" / framework / FRAMEWORKS[framework]).read_text()
    return [d for d in yaml.safe_load_all(text) if d]


def _errors(doc: dict[str, Any]) -> list[str]:
    schema = _schemas().get((doc["apiVersion"], doc["kind"]))
    assert schema is not None, f"no stored schema for {doc['apiVersion']} {doc['kind']}"
    validator = jsonschema.Draft7Validator(schema)
    return [
        f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)
    ]


def test_every_framework_has_an_example() -> None:
    shipped = {p.name for p in (K8S / "examples").iterdir() if p.name in FRAMEWORKS}
    assert shipped == set(FRAMEWORKS)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_example_matches_the_published_crd(framework: str) -> None:
    docs = _docs(framework)
    assert docs
    for doc in docs:
        assert _errors(doc) == [], f"{framework}: {doc['kind']}/{doc['metadata']['name']}"


@pytest.mark.parametrize(
    ("framework", "path", "typo"),
    [
        ("jobset", ["spec"], "replicatedJob"),
        ("lws", ["spec", "leaderWorkerTemplate"], "sizee"),
        ("trainer", ["spec"], "runtimeRefs"),
        ("mpi-operator", ["spec"], "slotPerWorker"),
        ("volcano", ["spec"], "minAvaliable"),
        ("pytorchjob", ["spec", "pytorchReplicaSpecs", "Worker"], "replica"),
    ],
)
def test_a_misspelt_field_is_caught(framework: str, path: list[str], typo: str) -> None:
    """The check can fail: a field the CRD does not know is reported, not pruned in silence."""
    doc = copy.deepcopy(next(d for d in _docs(framework) if d["kind"] != "ClusterTrainingRuntime"))
    node = doc
    for key in path:
        node = node[key]
    node[typo] = 1
    assert any(typo in e for e in _errors(doc))
