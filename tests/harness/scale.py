"""How long the cluster in a box takes to create and tear down N pods.

    python -m tests.harness.scale 64 256

For each N: an Indexed Job of N pods that sleep, on a fresh cluster. Reports the time for
apply() to return (namespaces, addresses, kubelet files), until every pod's container runs,
until cluster DNS lists all N addresses under the Service name, and for stop() (kill all,
delete every namespace and file).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from tests.harness import leftovers
from tests.harness.cluster import Cluster
from tests.harness.pod import RUNNING
from tests.harness.workload import parse


def sleeper_job(n: int) -> str:
    return f"""
apiVersion: v1
kind: Service
metadata: {{name: scale}}
spec: {{clusterIP: None, publishNotReadyAddresses: true, selector: {{job-name: s}}}}
---
apiVersion: batch/v1
kind: Job
metadata: {{name: s}}
spec:
  completionMode: Indexed
  completions: {n}
  parallelism: {n}
  template:
    spec:
      subdomain: scale
      containers: [{{name: c, image: busybox, command: [sleep, "3600"]}}]
"""


def measure(n: int, work: Path) -> dict[str, float]:
    cluster = Cluster(work / f"n{n}")
    t0 = time.monotonic()
    cluster.start()
    t1 = time.monotonic()
    try:
        [run] = cluster.apply(parse(sleeper_job(n)))
        t2 = time.monotonic()
        cluster.wait_for(
            lambda: all(p.phase == RUNNING for p in run.all_pods()), 120, "all pods Running"
        )
        t3 = time.monotonic()
        cluster.wait_dns("scale.default.svc.cluster.local", lambda a: len(a.addresses) == n, 60)
        t4 = time.monotonic()
    finally:
        t5 = time.monotonic()
        cluster.stop()
        t6 = time.monotonic()
    return {
        "cluster start": t1 - t0,
        "apply (namespaces, files)": t2 - t1,
        "all containers running": t3 - t1,
        "all in DNS": t4 - t1,
        "teardown": t6 - t5,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", nargs="*", type=int, default=[64, 256])
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("scale: needs root", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="peer-agent-scale-"))
    leftovers.register_path(work)
    try:
        for n in args.sizes:
            for name, seconds in measure(n, work).items():
                print(f"{n:4d} pods  {name:28s} {seconds:6.2f} s")
    finally:
        shutil.rmtree(work, ignore_errors=True)
        leftovers.unregister_path(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
