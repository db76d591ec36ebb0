"""The sdist and the wheel, built from this checkout as the release workflow builds them
(``python -m build``; here without isolation, with the test venv's setuptools, offline), pass
PyPI's checks, carry what they should and nothing a build or a test run left behind."""

from __future__ import annotations

import email
import os
import subprocess
import sys
import sysconfig
import tarfile
import tomllib
import zipfile
from email.message import Message
from pathlib import Path

import pytest
from trove_classifiers import classifiers as known_classifiers

import agent

pytestmark = pytest.mark.timeout(300)

REPO = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
NAME = f"peer_agent-{PROJECT['version']}"
# What setuptools writes into every sdist beside the tracked files.
GENERATED = {"PKG-INFO", "setup.cfg"} | {
    f"peer_agent.egg-info/{n}"
    for n in ("PKG-INFO", "SOURCES.txt", "dependency_links.txt", "entry_points.txt",
              "requires.txt", "top_level.txt")
}  # fmt: skip


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(sdist, wheel): the wheel built from the sdist, as ``python -m build`` does."""
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(REPO)],
        check=True,
        capture_output=True,
        timeout=240,
    )
    [sdist] = out.glob("*.tar.gz")
    [wheel] = out.glob("*.whl")
    return sdist, wheel


def _metadata(wheel: Path) -> Message:
    with zipfile.ZipFile(wheel) as archive:
        return email.message_from_bytes(archive.read(f"{NAME}.dist-info/METADATA"))


def test_twine_check_strict_passes_both(dists: tuple[Path, Path]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", *map(str, dists)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("PASSED") == 2, done.stdout


def test_the_sdist_is_the_tracked_tree_and_nothing_else(dists: tuple[Path, Path]) -> None:
    """Everything git tracks (the tests and what they read: k8s/, the CRDs, the fuzz corpus,
    tools/, the Dockerfile), and not build/, a venv, __pycache__ or .hypothesis."""
    tracked = subprocess.run(
        ["git", "-C", str(REPO), "ls-files"], check=True, capture_output=True, text=True
    ).stdout.splitlines()
    with tarfile.open(dists[0]) as archive:
        shipped = {m.name.removeprefix(f"{NAME}/") for m in archive.getmembers() if m.isfile()}
    assert sorted(shipped - GENERATED - set(tracked)) == []  # junk
    assert sorted(set(tracked) - shipped) == []  # missing


def test_the_wheel_is_the_package_its_license_and_valid_metadata(
    dists: tuple[Path, Path],
) -> None:
    with zipfile.ZipFile(dists[1]) as archive:
        names = archive.namelist()
    assert {n.split("/")[0] for n in names} == {"agent", f"{NAME}.dist-info"}
    assert "agent/py.typed" in names and f"{NAME}.dist-info/licenses/LICENSE" in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    meta = _metadata(dists[1])
    assert meta["Version"] == agent.__version__  # what `peer-agent --version` says
    assert meta["License-Expression"] == "Apache-2.0"
    assert meta["Requires-Python"] == ">=3.11"
    listed = meta.get_all("Classifier") or []
    # PyPI refuses an upload with an unknown classifier; twine check does not look
    assert [c for c in listed if c not in known_classifiers] == []
    assert not [c for c in listed if c.startswith("License ::")]  # the expression replaces them
    assert meta.get_all("Project-URL"), "no project URLs"


def test_the_tests_run_from_the_unpacked_sdist(dists: tuple[Path, Path], tmp_path: Path) -> None:
    """A distribution packager's check: the sdist's own tests, run against the sdist's own
    agent (a venv with this one's dependencies but not its editable install of the checkout)."""
    with tarfile.open(dists[0]) as archive:
        archive.extractall(tmp_path, filter="data")
    tree = tmp_path / NAME
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    [site] = venv.glob("lib/python*/site-packages")
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("PYTHONPATH", None)
    python = str(venv / "bin" / "python")
    where = subprocess.run(
        [python, "-c", "import agent; print(agent.__file__)"],
        cwd=tree, env=env, capture_output=True, text=True, timeout=60, check=True,
    ).stdout.strip()  # fmt: skip
    assert Path(where).is_relative_to(tree), where
    done = subprocess.run(
        [python, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "tests/pure/test_cli_usage.py", "tests/pure/test_framework_examples.py"],
        cwd=tree, env=env, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert " passed" in done.stdout and "skipped" not in done.stdout, done.stdout[-500:]
