"""Manifests the lint tests start from: a correct Job and Service with peer-agent, and the
Kubernetes docs' seed example; helpers that reach into them."""

from __future__ import annotations

from typing import Any

import yaml

# A correct Job and Service: peer-agent in an init container, everything wired.
GOOD = """
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
  completions: 4
  parallelism: 4
  template:
    metadata: {labels: {app: train}}
    spec:
      subdomain: peers
      restartPolicy: Never
      initContainers:
        - name: peer-agent
          image: registry.internal/peer-agent:0.1.0
          args: [wait, --hostfile, /etc/peer-agent/hostfile]
          env:
            - {name: PEER_AGENT_PEERS, value: "4"}
      containers:
        - name: worker
          image: registry.internal/worker:1
"""

# The Kubernetes docs' seed example (a ping loop, no peer-agent): correct as it is.
SEED = """
apiVersion: v1
kind: Service
metadata: {name: headless-svc}
spec:
  clusterIP: None
  selector: {job-name: example-job}
---
apiVersion: batch/v1
kind: Job
metadata: {name: example-job}
spec:
  completions: 3
  parallelism: 3
  completionMode: Indexed
  template:
    spec:
      subdomain: headless-svc
      restartPolicy: Never
      containers:
        - {name: example-workload, image: bash:latest, command: [bash, -c, "ping ..."]}
"""

Docs = tuple[dict[str, Any], dict[str, Any]]


def good() -> Docs:
    svc, job = yaml.safe_load_all(GOOD)
    return svc, job


def pod(docs: Docs) -> dict[str, Any]:
    return docs[1]["spec"]["template"]["spec"]  # type: ignore[no-any-return]


def agent(docs: Docs) -> dict[str, Any]:
    return pod(docs)["initContainers"][0]  # type: ignore[no-any-return]
