"""Instructions from ``exec`` to the first DNS query: the agent's start beside ``anyio.run``'s.

The cold-start case of ``make bench`` times the same thing in CPU, which moves by tens of
percent with whatever else the machine runs; an instruction count (valgrind's cachegrind) moves
by a fraction of a percent, so a change of a million instructions (about 0.2 ms here) shows.
Each program starts as the bench starts it (``bench.coldstart``): its own mount namespace whose
``/etc/resolv.conf`` names cluster DNS at 127.77.0.1, a pod's environment, the Python of a venv
with the agent installed. It runs under a wrapper that ends the process (``os._exit``) when it
sends its first datagram to port 53: that is where the count stops.

- ``peer-agent``: ``peer-agent wait`` of a 3-pod Job, as the bench runs it;
- ``anyio.run``: ``bench.coldstart.ANYIO_RUN``, a coroutine that only sends one datagram.

Usage (root, for the mount namespace; valgrind from Debian)::

    .venv/bin/python -m tools.startup_instructions --venv /path/to/venv [--runs 2]

``--venv``: a venv with the agent installed from its wheel (``make bench`` builds one; ``python
-m venv V && V/bin/pip install dist/peer_agent-*.whl``); this checkout's ``.venv`` is an
editable install, whose finder imports ``pathlib`` at every start and would be counted too.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.coldstart import ANYIO_RUN, DNS, ENV, RESOLV

__all__ = ["count", "main"]

#: run argv[1:] (a script's path or ``-c CODE``), ended at its first datagram to port 53
_WRAPPER = """\
import os, socket, sys
class _Socket(socket.socket):
    def sendto(self, data, *rest):
        if rest[-1][1] == 53:
            os._exit(0)
        return super().sendto(data, *rest)
    def send(self, data, *rest):
        if self.type == socket.SOCK_DGRAM and self.getpeername()[1] == 53:
            os._exit(0)
        return super().send(data, *rest)
socket.socket = _Socket
if sys.argv[1] == "-c":
    code, sys.argv = sys.argv[2], ["-c", *sys.argv[3:]]
else:
    with open(sys.argv[1]) as script:
        code, sys.argv = script.read(), sys.argv[1:]
exec(compile(code, sys.argv[0], "exec"), {"__name__": "__main__"})
"""
_WAIT = ["wait", "--peers", "3", "--index", "0", "--hostname", "example-job-0",
         "--service", "headless-svc", "--namespace", "default", "--port", "28999",
         "--listen", "127.0.0.1", "--timeout", "30s"]  # fmt: skip
_VALGRIND = ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null"]
_REFS = re.compile(r"I\s+refs:\s+([\d,]+)")


def count(venv: Path, program: str, work: Path) -> int:
    """Instructions ``program`` (``peer-agent`` or ``anyio.run``) runs to its first query."""
    wrapper, resolv = work / "first_query.py", work / "resolv.conf"
    wrapper.write_text(_WRAPPER)
    resolv.write_text(RESOLV)
    mount = 'mount --bind "$0" /etc/resolv.conf && exec "$@"'
    launch = ["unshare", "--mount", "--", "sh", "-c", mount, str(resolv)]
    run = [str(venv / "bin" / "python"), str(wrapper)]
    if program == "peer-agent":
        run += [str(venv / "bin" / "peer-agent"), *_WAIT]
    else:
        run += ["-c", ANYIO_RUN]
    # once without valgrind first: bytecode compiled and the page cache warm, as in a pod
    subprocess.run([*launch, *run], env=ENV, capture_output=True, check=False)
    valgrind = [
        "valgrind",
        "--tool=cachegrind",
        "--cache-sim=no",
        "--cachegrind-out-file=/dev/null",
    ]
    done = subprocess.run(
        [*launch, *valgrind, *run], env=ENV, capture_output=True, text=True, check=False
    )
    found = _REFS.search(done.stderr)
    if found is None:
        raise RuntimeError(f"no count from valgrind for {program}: {done.stderr[-500:]}")
    return int(found.group(1).replace(",", ""))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", type=Path, required=True, help="a venv with the agent's wheel")
    parser.add_argument("--runs", type=int, default=2, help="counts of each (they differ little)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="startup-instructions-") as work:
        counts = {
            p: [count(args.venv, p, Path(work)) for _ in range(args.runs)]
            for p in ("peer-agent", "anyio.run")
        }
    agent, floor = min(counts["peer-agent"]), min(counts["anyio.run"])
    for program, runs in counts.items():
        print(f"{program:>10}: {', '.join(f'{n / 1e6:.1f}M' for n in runs)} instructions")
    print(f"peer-agent over anyio.run: {(agent - floor) / 1e6:.1f}M instructions (DNS at {DNS})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
