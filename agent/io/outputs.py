"""What the workload gets after the barrier: environment, env file, hostfile, peers JSON.

The torch variables always; under LeaderWorkerSet also ``LWS_*`` and under Kubeflow Trainer
``PET_*``, with the leader's address as an absolute name, so a launcher that reads those finds a
name that resolves in one query (LWS's own ``LWS_LEADER_ADDRESS`` has no ``svc.<zone>``).

Files are written atomically (a temporary file in the same directory, then rename), so a reader
never sees half a file, also when the agent is killed mid-write.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from agent.config.model import Config, HostfileFormat
from agent.core.outcome import Outcome
from agent.errors import OutputError
from agent.topology.model import Kind

if TYPE_CHECKING:
    from pathlib import Path, PurePath

__all__ = ["peer_environment", "write_outputs"]


def peer_environment(config: Config) -> dict[str, str]:
    """The variables ``run`` sets and ``--env-file`` writes. A pod that is not one of the peers
    (a launcher) has no rank: it gets the peers, not ``RANK``. ``WORLD_SIZE`` is the number of
    pods, unless the controller set its own (the Training Operator's counts processes)."""
    t = config.topology
    rank = str(t.index)
    env = {
        "RANK": rank,
        "WORLD_SIZE": str(t.world_size),
        "MASTER_ADDR": t.display(0),
        "PEER_HOSTS": ",".join(t.display(i) for i in t.indices),
        "PEER_AGENT_INDEX": rank,
        "PEER_AGENT_PEERS": str(t.peers),
    }
    if t.index is None:
        del env["RANK"], env["PEER_AGENT_INDEX"]
    elif t.kind is Kind.LWS:
        env.update(
            LWS_LEADER_ADDRESS=t.display(0), LWS_GROUP_SIZE=str(t.peers), LWS_WORKER_INDEX=rank
        )
    elif t.kind is Kind.TRAINER:
        env.update(PET_MASTER_ADDR=t.display(0), PET_NNODES=str(t.peers), PET_NODE_RANK=rank)
    return env


def _hostfile(config: Config) -> str:
    t, slots, form = config.topology, config.outputs.slots, config.outputs.hostfile_format
    suffix = ""
    if slots and form is HostfileFormat.OPENMPI:
        suffix = f" slots={slots}"
    elif slots and form is HostfileFormat.MPICH:
        suffix = f":{slots}"
    return "".join(f"{t.display(i)}{suffix}\n" for i in t.indices)


def _env_file(config: Config) -> str:
    return "".join(f"{k}={v}\n" for k, v in peer_environment(config).items())


def _peers_json(config: Config, outcome: Outcome) -> str:
    t = config.topology
    body = {
        "job": t.job,
        "index": t.index,
        "peers": [
            {
                "index": p.index,
                "hostname": p.hostname,
                "fqdn": p.fqdn,
                "addresses": list(p.addresses),
            }
            for p in outcome.peers
        ],
    }
    return json.dumps(body, indent=2) + "\n"


def _write_atomically(path: Path, text: str) -> None:
    import tempfile  # with output files only: it imports shutil and random, 2 ms of a start

    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_outputs(config: Config, outcome: Outcome) -> list[Path]:
    """Write every requested file; returns the paths written."""
    out = config.outputs
    if out.hostfile is None and out.env_file is None and out.peers_json is None:
        return []
    from pathlib import Path  # with output files only, as tempfile

    renderers: list[tuple[PurePath | None, Callable[[], str]]] = [
        (out.hostfile, lambda: _hostfile(config)),
        (out.env_file, lambda: _env_file(config)),
        (out.peers_json, lambda: _peers_json(config, outcome)),
    ]
    written = []
    for path, render in renderers:
        if path is None:
            continue
        path = Path(path)
        try:
            _write_atomically(path, render())
        except OSError as exc:
            raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
        written.append(path)
    return written
