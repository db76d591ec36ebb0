"""The agent as the pods see it: a world-readable copy in a directory the harness owns.

Pods run as other users (runAsUser: 65532), and the checkout may live where they cannot enter
(a clone under /root, a `mktemp -d` folder: 0700). So the pods never run anything from the
checkout or its venv: `install` copies the agent's sources and its runtime dependencies (their
files, as the venv's installer recorded them) into the run's directory, writes the `peer-agent`
shim that runs them with the base interpreter, and zips the same tree into `peer-agent.pyz`,
the single-file agent the image ships at /opt/peer-agent/ (see the Dockerfile).
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import sys
import zipapp
from pathlib import Path

__all__ = ["REPO", "install"]

REPO = Path(__file__).resolve().parents[2]
_NAME = re.compile(r"[A-Za-z0-9._-]+")
# The zipapp's entry point: the same code as `python -m agent`, so the exit code is the CLI's.
_MAIN = 'import runpy\nrunpy.run_module("agent", run_name="__main__", alter_sys=True)\n'


def _runtime_distributions() -> list[importlib.metadata.Distribution]:
    """peer-agent's dependencies, transitively, without extras (what `pip install` brings)."""
    seen: dict[str, importlib.metadata.Distribution] = {}
    todo = [str(r) for r in importlib.metadata.requires("peer-agent") or []]
    while todo:
        requirement = todo.pop()
        if "extra ==" in requirement:
            continue
        match = _NAME.match(requirement)
        assert match is not None, requirement
        key = match.group(0).lower().replace("_", "-")
        if key in seen:
            continue
        try:
            dist = importlib.metadata.distribution(key)
        except importlib.metadata.PackageNotFoundError:
            continue  # a marker excluded it for this Python (e.g. a back-port)
        seen[key] = dist
        todo += dist.requires or []
    return list(seen.values())


def _copy_tree(source: Path, target: Path) -> None:
    shutil.copytree(
        source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"), dirs_exist_ok=True
    )


def install(directory: Path) -> Path:
    """Fill directory with site/, the `peer-agent` shim and peer-agent.pyz; returns directory.

    Everything is world-readable, and directory's own parents must be too (the run registry
    under /run is).
    """
    site = directory / "site"
    site.mkdir(parents=True, exist_ok=True)
    _copy_tree(REPO / "agent", site / "agent")
    for dist in _runtime_distributions():
        for file in dist.files or []:
            if "__pycache__" in file.parts or file.suffix == ".pyc" or file.parts[0] == "..":
                continue
            if file.parts[0].endswith(".dist-info"):
                continue
            source = Path(str(dist.locate_file(file)))
            if source.is_file():
                (site / file).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, site / file)
    # The interpreter, not the venv's python: the venv may sit inside the checkout.
    python = Path(getattr(sys, "_base_executable", sys.executable)).resolve()
    shim = directory / "peer-agent.tmp"
    shim.write_text(
        f'#!/bin/sh\nPYTHONPATH="{site}${{PYTHONPATH:+:$PYTHONPATH}}" '
        f'exec {python} -s -m agent "$@"\n'
    )
    staging = directory / "pyz"
    _copy_tree(site, staging)
    (staging / "__main__.py").write_text(_MAIN)
    (directory / "opt").mkdir(exist_ok=True)
    zipapp.create_archive(staging, directory / "opt" / "peer-agent.pyz")
    shutil.rmtree(staging)
    (directory / "stash").mkdir(exist_ok=True)
    for root, dirs, files in os.walk(directory):
        for name in dirs:
            os.chmod(Path(root) / name, 0o755)
        for name in files:
            os.chmod(Path(root) / name, 0o755 if name == "peer-agent.tmp" else 0o644)
    os.chmod(directory, 0o755)
    shim.rename(directory / "peer-agent")  # last: its presence means the install is complete
    return directory
