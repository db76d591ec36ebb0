"""What the demo prints about the cluster in a box, marked as the box's own.

The box is a simulation on this machine, so every line it says in kubectl's shape (a command,
"created", a pod table) starts with ``[box]``; the pods' logs under it are their processes' real
output, indented. Applying a framework's resource (a JobSet, say) prints that resource, as
kubectl would, and then what the box made of it while playing its controller: never a
``job.batch/... created`` for a Job nobody applied.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from tests.harness.cluster import Cluster
from tests.harness.jobrun import JobRun
from tests.harness.pod import SUCCEEDED
from tests.harness.workload import Workload

__all__ = ["BOX", "LEGEND", "applied", "get_pods", "logs", "say"]

BOX = "[box]"
LEGEND = (
    f"{BOX} marks what the cluster in a box says: a simulation on this machine (pods are network\n"
    f"{BOX} namespaces, cluster DNS is unbound), in kubectl's words; no Kubernetes cluster and no\n"
    f"{BOX} kubectl are involved. The indented lines under a `logs` line are the pods' real output."
)


def say(line: str) -> None:
    print(f"{BOX} {line}", flush=True)


def _created(doc: Mapping[str, Any]) -> str:
    """kubectl's line for one applied resource: ``jobset.jobset.x-k8s.io/train created``."""
    group = str(doc.get("apiVersion", "v1")).rpartition("/")[0]
    kind = str(doc["kind"]).lower()
    return f"{kind}{'.' + group if group else ''}/{doc['metadata']['name']} created"


def applied(rendered: str, wl: Workload) -> None:
    """The apply's "created" lines, then the Services and Jobs the box made as a controller."""
    docs = [d for d in yaml.safe_load_all(rendered) if d]
    for doc in docs:
        say(_created(doc))
    named = {(str(d["kind"]), str(d["metadata"]["name"])) for d in docs}
    made = [f"service/{s.name}" for s in wl.services if ("Service", s.name) not in named]
    made += [f"job/{j.name}" for j in wl.jobs if ("Job", j.name) not in named]
    if made:
        say(f"  playing its controller, the box made {', '.join(made)}")


def _age(since: float | None) -> str:
    return "-" if since is None else f"{time.monotonic() - since:.1f}s"


def get_pods(run: JobRun) -> None:
    say(f"kubectl get pods -l batch.kubernetes.io/job-name={run.job.name}")
    rows = [("NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP")]
    for pod in sorted(run.all_pods(), key=lambda p: (p.index, p.started_at or 0)):
        status = "Completed" if pod.phase == SUCCEEDED else ("Error" if pod.ended else pod.phase)
        total = len(run.job.template.containers)
        ready = total if pod.ready else 0
        rows.append((pod.name, f"{ready}/{total}", status, "0", _age(pod.started_at), pod.address))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        say("   ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def logs(cluster: Cluster, run: JobRun, only: Sequence[int] | None = None) -> None:
    """Every container's log of every pod (or of the pods of the indices ``only``)."""
    template = run.job.template
    names = [c.name for c in template.init_containers + template.containers]
    for pod in sorted(run.all_pods(), key=lambda p: p.index):
        if only is not None and pod.index not in only:
            continue
        for name in names if len(names) > 1 else [None]:
            text = cluster.logs(pod, name)
            if name and not text:
                continue  # e.g. the init container that copies the zipapp
            say(f"kubectl logs {pod.name}" + (f" -c {name}" if name else ""))
            for line in text.splitlines():
                print(f"    {line}")
