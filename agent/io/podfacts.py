"""The one adapter between configuration and the pod: it reads the environment, the kernel
hostname, kubelet's files and the files options name, into a
:class:`~agent.topology.podfiles.PodFacts`.

``agent.config`` then decides from that value alone, so every decision it makes is testable with
facts written by hand.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable, Mapping

from agent.options import FILE_INPUTS, FILE_OUTPUTS, OPTIONS
from agent.topology.podfiles import FileRead, PodFacts

__all__ = ["SA_NAMESPACE", "read_pod_facts"]

SA_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
#: a hostfile or a token is small; a bigger file named by mistake is not read whole
_MAX_FILE = 4 << 20


def _text(path: str) -> str:
    try:
        with open(path, errors="replace") as handle:
            return handle.read()
    except OSError:
        return ""


def _missing_dirs(paths: Iterable[str]) -> frozenset[str]:
    """The directories of output files that do not exist (as ``agent.config.parse`` names a
    path's parent)."""
    from pathlib import Path  # with output files only: pathlib costs every start 1.5 ms

    parents = {str(Path(path).parent) for path in paths}
    return frozenset(p for p in parents if not Path(p).is_dir())


def _read(path: str) -> FileRead:
    try:
        with open(path, "rb") as handle:
            mode = os.fstat(handle.fileno()).st_mode
            data = handle.read(_MAX_FILE + 1)
    except (OSError, ValueError) as exc:
        return FileRead(error=getattr(exc, "strerror", None) or str(exc))
    if len(data) > _MAX_FILE:
        return FileRead(error=f"larger than {_MAX_FILE >> 20} MiB")
    return FileRead(data=data, mode=mode)


def read_pod_facts(
    flags: Mapping[str, str | None], *, environ: Mapping[str, str] | None = None
) -> PodFacts:
    """Read what ``flags`` and the environment point at (each path the flag or the variable
    names), and what kubelet gives every pod."""
    env = dict(os.environ if environ is None else environ)
    by_dest = {o.dest: o for o in OPTIONS}

    def named(dest: str) -> set[str]:
        return {p for p in (flags.get(dest), env.get(by_dest[dest].env)) if p}

    files = {path: _read(path) for dest in FILE_INPUTS for path in named(dest)}
    outputs = [path for dest in FILE_OUTPUTS for path in named(dest)]
    return PodFacts(
        hostname=socket.gethostname(),
        hosts=_text("/etc/hosts"),
        resolv_conf=_text("/etc/resolv.conf"),
        sa_namespace=_text(SA_NAMESPACE),
        environ=env,
        files=files,
        missing_dirs=_missing_dirs(outputs) if outputs else frozenset(),
    )
