"""`make soak`: back-to-back barriers in the cluster in a box; exits 1 unless all are clean.

    python -m tests.soak                      # 200 barriers (SOAK_BARRIERS), seed 1 (SOAK_SEED)
    python -m tests.soak --barriers 20 --seed 7
    python -m tests.soak --seed 7 --only 13   # replay one barrier of that soak

Needs root (network namespaces). Prints a line per barrier, then the summary table; writes the
summary and per-barrier rows to build/soak.json and the logs of failed barriers under
build/soak-failures/.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

from tests.harness import leftovers
from tests.soak.soak import DEFAULT_BOUND, REPO, run_soak, table, write_json


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--barriers", type=int, default=int(os.environ.get("SOAK_BARRIERS") or 200))
    parser.add_argument("--seed", type=int, default=int(os.environ.get("SOAK_SEED") or 1))
    parser.add_argument("--only", type=int, action="append", help="run just these barriers")
    parser.add_argument("--bound", type=float, default=DEFAULT_BOUND, help="s; else a hang")
    parser.add_argument("--json", type=Path, default=REPO / "build" / "soak.json")
    parser.add_argument("--keep", type=Path, default=REPO / "build" / "soak-failures")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("soak: needs root (it builds pods out of network namespaces)", file=sys.stderr)
        return 2
    shutil.rmtree(args.keep, ignore_errors=True)  # only this run's failures are shown
    work = Path(tempfile.mkdtemp(prefix="peer-agent-soak-"))
    leftovers.register_path(work)
    try:
        result = run_soak(
            args.barriers,
            args.seed,
            work,
            bound=args.bound,
            only=args.only,
            keep_dir=args.keep,
            progress=lambda line: print(line, flush=True),
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
        leftovers.unregister_path(work)
    config = {"barriers": args.barriers, "seed": args.seed, "only": args.only, "bound": args.bound}
    write_json(result, args.json, config)
    print()
    print(table(result.summary))
    print(f"written to {args.json}")
    failures = result.failures()
    if failures:
        print(f"\n{len(failures)} barrier(s) failed; logs under {args.keep}:")
        for line in failures:
            print("  " + line[:1000])
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
