"""`peer-agent lint`: an agent listening on IPv4 only is reported (IPv6-only / dual-stack)."""

from __future__ import annotations

import pytest
import yaml

from agent.lint import lint_documents

JOB = """
apiVersion: v1
kind: Service
metadata: {name: peers}
spec:
  clusterIP: None
  publishNotReadyAddresses: true
  selector: {batch.kubernetes.io/job-name: train}
  ports: [{name: peer-agent, port: 29300, targetPort: 29300}]
---
apiVersion: batch/v1
kind: Job
metadata: {name: train}
spec:
  completionMode: Indexed
  completions: 2
  parallelism: 2
  template:
    spec:
      subdomain: peers
      restartPolicy: Never
      containers:
        - name: worker
          image: registry.internal/peer-agent:0.1.0
          args: ARGS
          env: ENV
"""


def _findings(args: list[str], env: list[dict[str, str]]) -> list[str]:
    text = JOB.replace("ARGS", yaml.safe_dump(args, default_flow_style=True).strip())
    text = text.replace("ENV", yaml.safe_dump(env, default_flow_style=True).strip())
    docs = list(yaml.safe_load_all(text))
    env_peers = {"name": "PEER_AGENT_PEERS", "value": "2"}
    docs[1]["spec"]["template"]["spec"]["containers"][0]["env"].append(env_peers)
    return [f"{f.field}: {f.message}" for f in lint_documents(docs, source="job.yaml")]


@pytest.mark.parametrize(
    ("args", "env", "field"),
    [
        (["wait", "--listen", "0.0.0.0"], [], "containers[worker].args"),
        (["wait", "--listen=198.18.0.7"], [], "containers[worker].args"),
        (["wait"], [{"name": "PEER_AGENT_LISTEN", "value": "0.0.0.0"}], "env[PEER_AGENT_LISTEN]"),
    ],
)
def test_ipv4_only_listen_is_reported(
    args: list[str], env: list[dict[str, str]], field: str
) -> None:
    [finding] = _findings(args, env)
    assert field in finding and "listens on IPv4 only" in finding


@pytest.mark.parametrize(
    ("args", "env"),
    [(["wait"], []), (["wait", "--listen", "::"], []), (["wait", "--listen", "fd00::7"], [])],
)
def test_both_families_or_ipv6_is_not_reported(args: list[str], env: list[dict[str, str]]) -> None:
    assert _findings(args, env) == []
