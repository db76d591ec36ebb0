"""How long the cluster in a box takes to create and tear down N pods, and how the agent's
modes fare at that size (``make scale``).

    python -m tests.harness.scale 64 256                         # sleeping pods
    python -m tests.harness.scale 256 --modes sidecar,exit,wait  # peer-agent's Jobs
    python -m tests.harness.scale 128 --modes exit --keep-logs /tmp/logs  # and keep the pods' logs

For each N and mode, on a fresh cluster. ``sleep``: an Indexed Job of N pods that sleep; the
time for apply() to return (namespaces, addresses, kubelet files), until every pod's container
runs, until cluster DNS lists all N addresses under the Service name, and for stop() (kill all,
delete every namespace and file). The agent's modes (``tests.harness.modescale``): the shipped
examples scaled to N pods, all started at once, until the Job completes.
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
from tests.harness import modescale as modes
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
    parser.add_argument(
        "--modes", default="sleep", help=f"comma-separated: sleep, {', '.join(modes.MODES)}"
    )
    parser.add_argument("--bound", type=float, default=900.0, help="s a mode's Job may take")
    parser.add_argument(
        "--keep-logs", type=Path, metavar="DIR", help="keep every pod's logs in DIR/MODE-N/POD"
    )
    args = parser.parse_args(argv)
    wanted = [m.strip() for m in args.modes.split(",") if m.strip()]
    if unknown := set(wanted) - {"sleep", *modes.MODES}:
        parser.error(f"unknown modes: {', '.join(sorted(unknown))}")
    if os.geteuid() != 0:
        print("scale: needs root", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="peer-agent-scale-"))
    leftovers.register_path(work)
    failed = 0
    try:
        for n in args.sizes:
            for mode in wanted:
                if mode == "sleep":
                    for name, seconds in measure(n, work).items():
                        print(f"{n:4d} pods  {name:28s} {seconds:6.2f} s", flush=True)
                    continue
                keep = args.keep_logs / f"{mode}-{n}" if args.keep_logs else None
                figures = modes.run_mode(mode, n, work / f"{mode}-{n}", args.bound, keep)
                failed += not figures["ok"]
                print(f"{n:4d} pods  {mode:8s} {modes.describe(figures)}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        leftovers.unregister_path(work)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
