"""`peer-agent lint` on garbage: findings or LintInputError (exit 2), never a traceback."""

from __future__ import annotations

import io
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.lint import LintInputError, format_finding, lint_documents, lint_paths
from tests.support.budget import budget

# Keys and values of real manifests, so random documents reach deep into the rules.
KEYS = [
    "kind", "metadata", "name", "namespace", "spec", "template", "containers", "initContainers",
    "subdomain", "selector", "clusterIP", "completions", "completionMode", "env", "value",
    "valueFrom", "args", "command", "image", "ports", "labels", "dnsPolicy", "dnsConfig",
    "searches", "hostNetwork", "publishNotReadyAddresses", "restartPolicy", "securityContext",
    "sysctls", "capabilities", "add", "items", "envFrom", "batch.kubernetes.io/job-name",
    "job-name", "controller-uid",
]  # fmt: skip
WORDS = [
    "Job", "Service", "List", "Indexed", "None", "Default", "ClusterFirst", "Always", "peer-agent",
    "peer-agent:1", "ghcr.io/x/peer-agent", "wait", "run", "sidecar", "--peers", "--peers=2",
    "--probe", "icmp", "PEER_AGENT_PEERS", "PEER_AGENT_PROBE", "-m", "agent", "--", "j", "s",
    "sh -c 'peer-agent wait --peers 3", "NET_RAW", "net.ipv4.ping_group_range", "$(N)", "",
]  # fmt: skip

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True),
    st.sampled_from(WORDS),
    st.text(max_size=8),
)
documents = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.one_of(st.sampled_from(KEYS), st.integers(), st.none()), inner, max_size=6
        ),
    ),
    max_leaves=40,
)


@pytest.mark.timeout(300)
@settings(max_examples=budget(4), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(documents, max_size=4))
def test_random_documents_end_in_findings(docs: list[Any]) -> None:
    for f in lint_documents(docs, source="fuzz.yaml"):
        assert "\n" not in format_finding(f)


@pytest.mark.timeout(300)
@settings(max_examples=budget(3), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(max_size=200), documents.map(lambda d: yaml.safe_dump_all([d]))))
def test_random_text_ends_in_findings_or_lint_input_error(text: str) -> None:
    try:
        report = lint_paths(["-"], stdin=io.StringIO(text))
    except LintInputError as e:
        assert str(e)  # a message for the user, never empty
    else:
        assert all(isinstance(format_finding(f), str) for f in report.findings)
        assert report.checked >= 1 and "\n" not in report.summary()


@pytest.mark.timeout(60)
def test_pathologically_nested_yaml_is_an_input_error() -> None:
    with pytest.raises(LintInputError):
        lint_paths(["-"], stdin=io.StringIO("[" * 100_000))
