"""``python -m agent`` and the ``peer-agent`` command: the CLI, started cheaply.

This module and ``agent/__init__.py`` stay importable by any Python 3.6 or later (no
``from __future__ import annotations``, no annotation that is evaluated and fails there): they
run before the version check, in a workload image whose Python may be older than the agent's.
"""

import contextlib
import gc
import os
import sys

__all__ = ["MINIMUM_PYTHON", "main", "run"]

#: the oldest Python the agent runs on: pyproject.toml's requires-python
MINIMUM_PYTHON = (3, 11)


def _unsupported_python() -> str:
    """The line to print when this Python is older than :data:`MINIMUM_PYTHON`, else ``""``.
    Read from ``sys`` at each call, so a test can fake the version."""
    if tuple(sys.version_info[:2]) >= MINIMUM_PYTHON:
        return ""
    need = ".".join(str(part) for part in MINIMUM_PYTHON)
    this = ".".join(str(part) for part in sys.version_info[:3])
    where = sys.executable or "an unknown path"
    return f"peer-agent needs Python ≥ {need}; this is {this} at {where}\n"


def _say(line: str) -> None:
    """``line`` on stderr as UTF-8 whatever the locale: Python 3.6 in a pod without LANG would
    print ``≥`` as ``\\u2265`` (3.7 and later switch such a C locale to UTF-8 themselves)."""
    binary = getattr(sys.stderr, "buffer", None)
    if binary is None:  # a stderr replaced by a text-only stream
        sys.stderr.write(line)
        return
    sys.stderr.flush()
    binary.write(line.encode("utf-8"))
    binary.flush()


def main() -> int:
    """Run the CLI. The cyclic GC is off from here until the CLI's event loop runs (or it runs a
    command without one): a start-up allocates hundreds of thousands of long-lived objects
    (modules, classes, functions; asyncio and anyio's backend, which ``anyio.run`` imports) and
    collections among them free nothing; they cost 4 of the 80 ms of CPU before the first DNS
    query. The CLI freezes them when it turns the GC on, so no collection scans them again."""
    refusal = _unsupported_python()
    if refusal:
        # The one place outside agent.commands.cli that prints: the CLI itself cannot be
        # imported by this Python (enum.StrEnum, datetime.UTC, except*). 2 is ExitCode.USAGE:
        # the user chose the interpreter, as they choose a flag.
        _say(refusal)
        return 2
    # Before anything slow: a stop signal in the next moments must not be dropped (PID 1).
    from agent.commands import startsignals

    startsignals.hold()
    gc.disable()
    from agent.commands.cli import main as cli_main

    return cli_main()


def run() -> None:
    """The ``peer-agent`` command and ``python -m agent``: :func:`main`, then out at once. The
    interpreter's teardown (every module and object freed one by one) cost a pod 7 ms of CPU
    after its work was done; by then every file the agent wrote is synced and closed and every
    log line flushed, so stdout and stderr are all there is left to flush. (A usage error or
    ``--help``, which argparse ends with SystemExit, a bug's traceback and a Python refused as
    too old end as usual.)"""
    code = main()
    if _unsupported_python():
        raise SystemExit(code)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, OSError, ValueError):  # gone or closed
            stream.flush()
    os._exit(code)


if __name__ == "__main__":
    run()
