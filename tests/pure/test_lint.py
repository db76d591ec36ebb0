"""`peer-agent lint`: one bad manifest per pitfall, and no false alarms on good ones."""

from __future__ import annotations

import copy
import io
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.errors import PeerAgentError
from agent.exitcodes import ExitCode
from agent.lint import Finding, LintInputError, format_finding, lint_documents, lint_paths
from tests.pure.lint_manifests import GOOD, SEED, Docs, agent, good, pod

K8S = Path(__file__).resolve().parents[2] / "k8s"


def _set(d: dict[str, Any], key: str, value: Any) -> None:
    d[key] = value


def _set_all(*changes: tuple[dict[str, Any], str, Any]) -> None:
    """Several edits for one case: a lambda holds a single expression."""
    for d, key, value in changes:
        d[key] = value


INIT = "spec.template.spec.initContainers[peer-agent]"

# (case, break the good manifest, expected (kind, field, severity))
CASES: list[tuple[str, Callable[[Docs], None], tuple[str, str, str]]] = [
    (
        "subdomain names no Service",
        lambda d: _set(pod(d), "subdomain", "typo"),
        ("Job", "spec.template.spec.subdomain", "error"),
    ),
    (
        "Service in another namespace",
        lambda d: _set_all(
            (d[0]["metadata"], "namespace", "a"),
            (d[1]["metadata"], "namespace", "b"),
        ),
        ("Job", "spec.template.spec.subdomain", "error"),
    ),
    (
        "subdomain unset",
        lambda d: pod(d).pop("subdomain"),
        ("Job", "spec.template.spec.subdomain", "error"),
    ),
    (
        "Service not headless",
        lambda d: d[0]["spec"].pop("clusterIP"),
        ("Service", "spec.clusterIP", "error"),
    ),
    (
        "selector names another Job",
        lambda d: _set(d[0]["spec"], "selector", {"batch.kubernetes.io/job-name": "tran"}),
        ("Service", "spec.selector[batch.kubernetes.io/job-name]", "error"),
    ),
    (
        "selector on a label the pods lack",
        lambda d: _set(d[0]["spec"], "selector", {"app": "training"}),
        ("Service", "spec.selector[app]", "error"),
    ),
    (
        "selector on controller-uid",
        lambda d: _set(d[0]["spec"], "selector", {"controller-uid": "4f1c0e"}),
        ("Service", "spec.selector[controller-uid]", "error"),
    ),
    (
        "no selector",
        lambda d: d[0]["spec"].pop("selector"),
        ("Service", "spec.selector", "error"),
    ),
    (
        "init container without publishNotReadyAddresses",
        lambda d: d[0]["spec"].pop("publishNotReadyAddresses"),
        ("Service", "spec.publishNotReadyAddresses", "error"),
    ),
    (
        "dnsPolicy Default",
        lambda d: _set(pod(d), "dnsPolicy", "Default"),
        ("Job", "spec.template.spec.dnsPolicy", "error"),
    ),
    (
        "dnsPolicy None without cluster search",
        lambda d: _set_all(
            (pod(d), "dnsPolicy", "None"),
            (pod(d), "dnsConfig", {"nameservers": ["10.96.0.10"], "searches": ["corp.example"]}),
        ),
        ("Job", "spec.template.spec.dnsPolicy", "error"),
    ),
    (
        "hostNetwork with ClusterFirst",
        lambda d: _set(pod(d), "hostNetwork", True),
        ("Job", "spec.template.spec.dnsPolicy", "error"),
    ),
    (
        "PEER_AGENT_PEERS disagrees with completions",
        lambda d: _set(agent(d)["env"][0], "value", "3"),
        ("Job", f"{INIT}.env[PEER_AGENT_PEERS]", "error"),
    ),
    (
        "--peers disagrees with completions",
        lambda d: agent(d)["args"].append("--peers=8"),
        ("Job", f"{INIT}.args", "error"),
    ),
    (
        "no peer count at all",
        lambda d: agent(d).pop("env"),
        ("Job", f"{INIT}.env", "error"),
    ),
    (
        "last hostname over 63 characters",
        lambda d: _set_all(
            (d[1]["metadata"], "name", "t" * 62),
            (d[0]["spec"], "selector", {"job-name": "t" * 62}),
        ),
        ("Job", "metadata.name", "error"),
    ),
    (
        "job name not a DNS-1123 label",
        lambda d: _set_all(
            (d[1]["metadata"], "name", "train.v2"),
            (d[0]["spec"], "selector", {"job-name": "train.v2"}),
        ),
        ("Job", "metadata.name", "error"),
    ),
    (
        "completionMode not Indexed",
        lambda d: d[1]["spec"].pop("completionMode"),
        ("Job", "spec.completionMode", "error"),
    ),
    (
        "icmp probe without sysctl or NET_RAW",
        lambda d: agent(d)["env"].append({"name": "PEER_AGENT_PROBE", "value": "icmp"}),
        ("Job", f"{INIT}.env[PEER_AGENT_PROBE]", "error"),
    ),
    (
        "no named port peer-agent",
        lambda d: _set(d[0]["spec"], "ports", [{"name": "http", "port": 80}]),
        ("Service", "spec.ports", "warning"),
    ),
    (
        "image from a public registry",
        lambda d: _set(agent(d), "image", "ghcr.io/someone/peer-agent:0.1.0"),
        ("Job", f"{INIT}.image", "warning"),
    ),
]


def where(findings: list[Finding]) -> list[tuple[str, str, str]]:
    return [(f.obj.split("/")[0], f.field, f.severity) for f in findings]


@pytest.mark.timeout(10)
def test_the_good_manifest_and_the_docs_seed_example_are_clean() -> None:
    assert lint_documents(list(good()), source="good.yaml") == []
    assert lint_documents(list(yaml.safe_load_all(SEED)), source="seed.yaml") == []


@pytest.mark.timeout(10)
@pytest.mark.parametrize(("case", "breaks", "expected"), CASES, ids=[c[0] for c in CASES])
def test_each_pitfall_is_reported_once_with_where_and_fix(
    case: str, breaks: Callable[[Docs], None], expected: tuple[str, str, str]
) -> None:
    docs = copy.deepcopy(good())
    breaks(docs)
    findings = lint_documents(list(docs), source="bad.yaml")
    assert where(findings) == [expected], f"{case}: {[format_finding(f) for f in findings]}"
    f = findings[0]
    assert f.file == "bad.yaml"
    assert f.fix and f.message
    line = format_finding(f)
    assert "\n" not in line
    assert line.startswith(f"bad.yaml: {f.obj}: {f.field}: ")
    assert f"fix: {f.fix}" in line


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    ("case", "change"),
    [
        ("icmp with the ping sysctl", "sysctl"),
        ("icmp with NET_RAW", "netraw"),
        ("selector on a template label", "template-label"),
        ("agent started from a shell script", "shell"),
        ("peer count from a ConfigMap", "valuefrom"),
        ("dnsPolicy None with the cluster search list", "dns-none-ok"),
        ("zipapp copied, not run", "copy-only"),
    ],
)
def test_no_false_alarm(case: str, change: str) -> None:
    docs = copy.deepcopy(good())
    a = agent(docs)
    if change in ("sysctl", "netraw"):
        a["env"].append({"name": "PEER_AGENT_PROBE", "value": "icmp"})
        if change == "sysctl":
            sysctl = {"name": "net.ipv4.ping_group_range", "value": "0 2147483647"}
            pod(docs)["securityContext"] = {"sysctls": [sysctl]}
        else:
            a["securityContext"] = {"capabilities": {"add": ["NET_RAW"]}}
    elif change == "template-label":
        docs[0]["spec"]["selector"] = {"app": "train", "job-name": "train"}
    elif change == "shell":
        a.pop("args")
        a.pop("env")
        a["command"] = ["sh", "-c", "exec /opt/peer-agent/peer-agent.pyz wait --peers 4 --x"]
    elif change == "valuefrom":
        a["env"] = [{"name": "PEER_AGENT_PEERS", "valueFrom": {"configMapKeyRef": {"name": "c"}}}]
    elif change == "dns-none-ok":
        pod(docs)["dnsPolicy"] = "None"
        pod(docs)["dnsConfig"] = {"searches": ["default.svc.cluster.local", "svc.cluster.local"]}
    elif change == "copy-only":
        a.pop("env")
        a.pop("args")
        a["command"] = ["cp", "/opt/peer-agent/peer-agent.pyz", "/peer-agent/"]
    assert lint_documents(list(docs), source="ok.yaml") == [], case


@pytest.mark.timeout(10)
def test_a_job_finds_its_service_in_another_file_and_inside_a_kind_list(tmp_path: Path) -> None:
    svc, job = good()
    (tmp_path / "svc.yaml").write_text(yaml.safe_dump({"kind": "List", "items": [svc]}))
    (tmp_path / "nested").mkdir()
    job["spec"]["completionMode"] = "NonIndexed"
    (tmp_path / "nested" / "job.yml").write_text(yaml.safe_dump(job))
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "junk.yaml").write_text(": : not yaml [")
    findings = lint_paths([str(tmp_path)], stdin=io.StringIO()).findings
    assert [(f.file, f.field) for f in findings] == [
        (str(tmp_path / "nested" / "job.yml"), "spec.completionMode")
    ]


@pytest.mark.timeout(10)
def test_stdin_is_read_for_dash() -> None:
    assert lint_paths(["-"], stdin=io.StringIO(GOOD)).findings == ()
    bad = GOOD.replace("clusterIP: None", "clusterIP: 10.0.0.1")
    assert [f.file for f in lint_paths(["-"], stdin=io.StringIO(bad)).findings] == ["<stdin>"]


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    ("content", "said"),
    [
        (None, "no such file"),
        (b"\xff\xfe\x00", "not UTF-8"),
        (b"kind: Job\n  bad: [indent", "not valid YAML"),
        (b"!!python/object:os.system {}", "not valid YAML"),
        (b"just: a config\n", "no Job or Service"),
    ],
)
def test_unreadable_input_is_a_lint_input_error_with_exit_code_2(
    tmp_path: Path, content: bytes | None, said: str
) -> None:
    path = tmp_path / "input.yaml"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(LintInputError, match=said) as caught:
        lint_paths([str(path)], stdin=io.StringIO())
    assert isinstance(caught.value, PeerAgentError)
    assert caught.value.exit_code == ExitCode.USAGE
    assert int(caught.value.exit_code) == 2  # the number podFailurePolicy rules key on


@pytest.mark.timeout(60)
def test_without_pyyaml_lint_says_how_to_install_it_and_the_agent_still_imports() -> None:
    code = (
        "import sys, io; sys.modules['yaml'] = None\n"
        "import agent.lint\n"
        "try:\n"
        "    agent.lint.lint_paths(['-'], stdin=io.StringIO('kind: Job'))\n"
        "except agent.lint.LintInputError as e:\n"
        "    print(e)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=30
    )
    assert "pip install 'peer-agent[lint]'" in out.stdout


def _render(path: Path) -> str:
    return subprocess.run(
        ["kubectl", "kustomize", str(path)], check=True, capture_output=True, text=True, timeout=60
    ).stdout


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    "path",
    sorted(p.parent for p in K8S.rglob("kustomization.yaml")),
    ids=lambda p: str(p.relative_to(K8S)),
)
def test_the_shipped_k8s_tree_lints_clean(path: Path) -> None:
    findings = lint_paths(["-"], stdin=io.StringIO(_render(path))).findings
    assert [format_finding(f) for f in findings] == []


@pytest.mark.timeout(10)
@pytest.mark.parametrize("subdomain", ["typo", None])
def test_a_wrong_subdomain_does_not_hide_the_services_own_mistakes(subdomain: str | None) -> None:
    """Every finding in one pass: the Service that selects the Job's pods is checked too, so
    fixing the subdomain does not reveal a second round of errors."""
    svc, job = good()
    svc["spec"].pop("clusterIP")
    svc["spec"].pop("publishNotReadyAddresses")
    if subdomain is None:
        pod((svc, job)).pop("subdomain")
    else:
        pod((svc, job))["subdomain"] = subdomain
    found = [(f.obj, f.field) for f in lint_documents([svc, job], source="x.yaml")]
    assert found == [
        ("Job/train", "spec.template.spec.subdomain"),
        ("Service/peers", "spec.clusterIP"),
        ("Service/peers", "spec.publishNotReadyAddresses"),
    ]


@pytest.mark.timeout(10)
def test_a_service_that_selects_another_jobs_pods_is_not_blamed() -> None:
    """Only the Service the Job's pods would be named in is checked: a plain ClusterIP Service
    of something else among the inputs is none of lint's business."""
    svc, job = good()
    other = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "metrics"}}
    other["spec"] = {"selector": {"app": "prometheus"}, "ports": [{"port": 9090}]}
    assert lint_documents([svc, job, other], source="x.yaml") == []


@pytest.mark.timeout(10)
def test_lint_says_what_it_checked_on_success_and_counts_findings_on_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from agent.commands.cli import main

    clean = tmp_path / "clean.yaml"
    clean.write_text(GOOD + "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n")
    assert main(["lint", str(clean)]) == 0
    out, err = capsys.readouterr()
    assert (out, err) == ("", "peer-agent lint: 2 resources checked, no findings\n")

    broken = tmp_path / "broken.yaml"
    svc, job = good()
    svc["spec"].pop("ports")  # a warning
    svc["spec"]["clusterIP"] = "10.0.0.1"  # an error
    pod((svc, job))["subdomain"] = "typo"  # an error
    broken.write_text(yaml.safe_dump_all([svc, job]))
    assert main(["lint", str(broken)]) == 1
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 3 and all(
        line.startswith(str(broken)) for line in out.splitlines()
    )
    assert err == "peer-agent lint: 2 resources checked, 3 findings (2 errors, 1 warning)\n"
