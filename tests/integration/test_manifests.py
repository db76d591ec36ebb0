"""The shipped k8s/ tree: every kustomization renders, validates and meets Pod Security."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate import utils as kv_utils

K8S = Path(__file__).resolve().parents[2] / "k8s"
KUSTOMIZATIONS = sorted(p.parent for p in K8S.rglob("kustomization.yaml"))
EXAMPLES = sorted(p.parent.name for p in (K8S / "examples").glob("*/kustomization.yaml"))
# Native sidecars (init containers with restartPolicy: Always) are on by default from 1.29.
OLDEST = (1, 29)


def _version_key(v: str) -> tuple[int, int]:
    major, minor = v.split(".")[:2]
    return int(major), int(minor)


VERSIONS = sorted(
    {".".join(v.split(".")[:2]) for v in kv_utils.all_versions() if _version_key(v) >= OLDEST},
    key=_version_key,
)


def render(path: Path) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl is not installed; `make deps` installs it"
    out = subprocess.run(
        [kubectl, "kustomize", str(path)], check=True, capture_output=True, text=True, timeout=60
    ).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def _pod_specs(docs: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (d["metadata"]["name"], d["spec"]["template"]["spec"]) for d in docs if d["kind"] == "Job"
    ]


def _containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return list(spec.get("initContainers", [])) + list(spec["containers"])


@pytest.mark.timeout(60)
def test_every_example_from_the_issue_is_shipped() -> None:
    assert EXAMPLES == ["mpi-init", "pod-failure-policy", "secure", "seed", "sidecar", "torchrun"]
    assert K8S / "base" in KUSTOMIZATIONS


@pytest.mark.timeout(300)
@pytest.mark.parametrize("path", KUSTOMIZATIONS, ids=lambda p: str(p.relative_to(K8S)))
def test_renders_and_validates_strictly_on_every_supported_kubernetes(path: Path) -> None:
    docs = render(path)
    assert {d["kind"] for d in docs} >= {"Service", "Job"}
    assert VERSIONS[0] == "1.29" and len(VERSIONS) >= 2
    for doc in docs:
        for version in VERSIONS:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as e:
                pytest.fail(f"{path}: {doc['kind']}/{doc['metadata']['name']} on {version}: {e}")


@pytest.mark.timeout(60)
def test_native_sidecar_schema_needs_1_29() -> None:
    """The reason the supported range starts at 1.29: older schemas reject the sidecar example."""
    job = next(d for d in render(K8S / "examples" / "sidecar") if d["kind"] == "Job")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(job, "1.27", strict=True)


#: the one container that runs as root: the MPI example's, for sshd (its header says so), with
#: the capabilities sshd's privilege separation uses, all of Pod Security "baseline"
SSHD = ("mpi-init", "mpi")
SSHD_CAPS = ["SETUID", "SETGID", "SYS_CHROOT", "KILL", "NET_BIND_SERVICE"]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("path", KUSTOMIZATIONS, ids=lambda p: str(p.relative_to(K8S)))
def test_pods_meet_pod_security_restricted(path: Path) -> None:
    """Every container of every example is "restricted", but the MPI example's sshd container,
    which is exactly "baseline" with the least sshd needs; its agent's image runs restricted."""
    for name, spec in _pod_specs(render(path)):
        assert spec["automountServiceAccountToken"] is False, name
        pod_sc = spec["securityContext"]
        assert pod_sc["runAsNonRoot"] is True, name
        assert isinstance(pod_sc["runAsUser"], int) and pod_sc["runAsUser"] > 0, name
        assert pod_sc["seccompProfile"]["type"] == "RuntimeDefault", name
        for c in _containers(spec):
            sc = c["securityContext"]
            where = f"{name}/{c['name']}"
            if (path.name, c["name"]) == SSHD:
                assert (sc["runAsUser"], sc["runAsNonRoot"]) == (0, False), where
                assert sc["capabilities"] == {"drop": ["ALL"], "add": SSHD_CAPS}, where
                assert sc["allowPrivilegeEscalation"] is False, where
                assert sc["readOnlyRootFilesystem"] is True, where
                continue
            assert sc["allowPrivilegeEscalation"] is False, where
            assert sc["readOnlyRootFilesystem"] is True, where
            assert sc["capabilities"]["drop"] == ["ALL"], where
            assert "add" not in sc["capabilities"], where


@pytest.mark.timeout(60)
@pytest.mark.parametrize("path", KUSTOMIZATIONS, ids=lambda p: str(p.relative_to(K8S)))
def test_image_is_one_images_entry_away_from_a_private_registry(path: Path, tmp_path: Path) -> None:
    """A user's overlay with one `images:` entry moves every peer-agent reference."""
    # kustomize takes only relative paths to other kustomizations: work on a copy.
    shutil.copytree(K8S, tmp_path / "k8s")
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(
        f"resources: [../k8s/{path.relative_to(K8S)}]\n"
        "images: [{name: peer-agent, newName: registry.internal/peer-agent, newTag: '9.9'}]\n"
    )
    moved = {c["image"] for _, spec in _pod_specs(render(overlay)) for c in _containers(spec)}
    assert "registry.internal/peer-agent:9.9" in moved
    assert not any(i.startswith("peer-agent") for i in moved), moved


@pytest.mark.timeout(60)
def test_pod_failure_policy_keys_on_design_exit_codes() -> None:
    job = next(d for d in render(K8S / "examples" / "pod-failure-policy") if d["kind"] == "Job")
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    by_action: dict[str, set[int]] = {}
    for rule in job["spec"]["podFailurePolicy"]["rules"]:
        codes = rule.get("onExitCodes", {}).get("values", [])
        by_action.setdefault(rule["action"], set()).update(codes)
    assert by_action["FailJob"] == {2, 4}
    assert 143 in by_action["Ignore"]
    assert {1, 3} <= by_action["Count"]


@pytest.mark.timeout(60)
def test_the_secure_example_mounts_a_token_and_admits_only_the_jobs_pods() -> None:
    """The token file is readable by the agent's user alone and the agent reads it by path;
    the NetworkPolicy admits port 29300 from the Job's own pods only."""
    docs = render(K8S / "examples" / "secure")
    job = next(d for d in docs if d["kind"] == "Job")
    pod = job["spec"]["template"]["spec"]
    [volume] = pod["volumes"]
    assert volume["secret"]["defaultMode"] == 0o400
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert env["PEER_AGENT_TOKEN_FILE"] == "/var/run/peer-agent/token"
    [policy] = [d for d in docs if d["kind"] == "NetworkPolicy"]
    mine = {"batch.kubernetes.io/job-name": "example-job"}
    assert policy["spec"]["podSelector"]["matchLabels"] == mine
    agent_rule = next(r for r in policy["spec"]["ingress"] if "from" in r)
    assert agent_rule["from"] == [{"podSelector": {"matchLabels": mine}}]
    assert agent_rule["ports"] == [{"protocol": "TCP", "port": 29300}]
    others = [p for r in policy["spec"]["ingress"] if "from" not in r for p in r["ports"]]
    assert all(
        not (p.get("port", 0) <= 29300 <= p.get("endPort", p.get("port", 0))) for p in others
    )
