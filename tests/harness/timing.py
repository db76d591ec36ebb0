"""Time from a late pod's start to the workload's first collective, with and without peer-agent.

    python -m tests.harness.timing [--runs 3] [--late 3] [--negative-ttl 5]

Scenarios: torchrun behind `peer-agent run` and torchrun alone (torch's static rendezvous
retries the master's name itself), each with the master (pod 0) late and with a worker (pod 2)
late; Open MPI (k8s/examples/mpi-init) with a worker late. One cluster in a box per run; the
figure is the late pod's sandbox start (its address, DNS name after the publish delay) to the
first rank's all-reduce completing, on the node's monotonic clock. Prints one table (median,
min, max). Root only, like the tests; a measurement, so it asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from tests.harness import leftovers, workload
from tests.harness.cluster import Cluster
from tests.harness.options import ClusterOptions
from tests.harness.realworkloads import (
    MPI_EXAMPLE,
    collectives,
    mpi_image_files,
    torch_image_files,
    torchrun_alone,
    torchrun_behind_agent,
)
from tests.harness.workload import Workload

JOB_TIMEOUT = 240.0
Scenario = tuple[str, Callable[[], Workload], Callable[[], tuple[tuple[str, Path, str], ...]], int]

SCENARIOS: list[Scenario] = [
    ("torchrun + peer-agent, master late", torchrun_behind_agent, torch_image_files, 0),
    ("torchrun alone, master late", torchrun_alone, torch_image_files, 0),
    ("torchrun + peer-agent, worker late", torchrun_behind_agent, torch_image_files, 2),
    ("torchrun alone, worker late", torchrun_alone, torch_image_files, 2),
    ("mpirun + peer-agent, worker late", lambda: workload.load(MPI_EXAMPLE), mpi_image_files, 2),
]


def measure(
    scenario: Scenario, work: Path, *, late: float, publish_delay: float, negative_ttl: int
) -> float | str:
    _, make, files, index = scenario
    options = ClusterOptions(
        publish_delay=publish_delay, negative_ttl=negative_ttl, image_files=files()
    )
    with Cluster(work, options) as cluster:
        [run] = cluster.apply(make(), start_delays={index: late})
        status = cluster.wait_job(run, JOB_TIMEOUT)
        names = [c.name for c in run.job.template.containers]
        done = [c for name in names for c in collectives(cluster, run, name)]
        started = run.pod(index).started_at
        if status != "Complete" or len(done) != 3 or started is None:
            return f"{status}, {len(done)} ranks reported"
        return min(c.at for c in done) - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--late", type=float, default=3.0, help="seconds the late pod waits")
    parser.add_argument("--publish-delay", type=float, default=1.0)
    parser.add_argument("--negative-ttl", type=int, default=0, help="CoreDNS NXDOMAIN cache")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("timing: needs root (it builds pods out of network namespaces)", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="peer-agent-timing-"))
    leftovers.register_path(work)
    print(
        f"late pod scheduled {args.late:g}s late; DNS publish delay {args.publish_delay:g}s; "
        f"NXDOMAIN cache {args.negative_ttl}s; {args.runs} runs each"
    )
    print(
        f"{'scenario':40} {'median':>7} {'min':>7} {'max':>7}  (late pod start -> 1st collective)"
    )
    try:
        for n, scenario in enumerate(SCENARIOS):
            figures: list[float] = []
            for r in range(args.runs):
                started = time.monotonic()
                got = measure(
                    scenario,
                    work / f"s{n}r{r}",
                    late=args.late,
                    publish_delay=args.publish_delay,
                    negative_ttl=args.negative_ttl,
                )
                if isinstance(got, str):
                    print(
                        f"{scenario[0]}: run {r} failed ({got}) "
                        f"after {time.monotonic() - started:.0f}s"
                    )
                    continue
                figures.append(got)
            if figures:
                print(
                    f"{scenario[0]:40} {statistics.median(figures):6.2f}s {min(figures):6.2f}s "
                    f"{max(figures):6.2f}s"
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)
        leftovers.unregister_path(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
