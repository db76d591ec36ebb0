"""The zipapp (tools/build_zipapp.py) starts from bytecode, and still runs under another Python.

Built once, offline, from the wheelhouse the image test uses (downloaded once from the package
index, then cached). Whether a module came from bytecode is read off its ``__file__``: zipimport
sets it to the ``.pyc`` it loaded, or to the ``.py`` it compiled in memory.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests import podman_kit
from tests.support.oldpythons import OLD_PYTHONS, older_pythons

REPO = Path(__file__).resolve().parents[2]
# Imports the `wait` path up to its first DNS query (anyio's asyncio backend included) from the
# archive alone, and names every module the archive gave as source instead of bytecode.
PROBE = """
import json, sys
sys.path.insert(0, sys.argv[1])
import agent.commands.cli, anyio._backends._asyncio
inside = [m for m in list(sys.modules.values()) if getattr(m, "__file__", "") and
          m.__file__.startswith(sys.argv[1])]
print(json.dumps({"modules": len(inside),
                  "source": sorted(m.__name__ for m in inside if not m.__file__.endswith(".pyc"))}))
"""


@pytest.fixture(scope="module")
def pyz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("zipapp") / "peer-agent.pyz"
    house = podman_kit.wheelhouse()
    subprocess.run(
        [sys.executable, str(REPO / "tools" / "build_zipapp.py"), "-o", str(out),
         "--find-links", str(house), "--no-index", str(REPO)],
        check=True, capture_output=True, timeout=240,
    )  # fmt: skip
    return out


def _from_source(pyz: Path) -> list[str]:
    """The modules of the archive on the ``wait`` path that were compiled from source."""
    done = subprocess.run(
        [sys.executable, "-I", "-c", PROBE, str(pyz)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    probe = json.loads(done.stdout)
    assert probe["modules"] > 50, probe  # the agent, anyio, … all came from the archive
    return list(probe["source"])


@pytest.mark.timeout(300)
def test_the_wait_path_loads_from_the_archives_bytecode(pyz: Path) -> None:
    with zipfile.ZipFile(pyz) as archive:
        magic = archive.read("agent/commands/cli.pyc")[:4]
        stored = archive.getinfo("agent/commands/cli.pyc").compress_type
    assert magic == importlib.util.MAGIC_NUMBER  # compiled by the Python that built it
    assert stored == zipfile.ZIP_STORED  # read as it is, not inflated at every start
    assert _from_source(pyz) == []
    done = subprocess.run(
        [sys.executable, str(pyz), "--version"], capture_output=True, text=True, timeout=60
    )
    assert done.stdout.strip() == "peer-agent 0.1.0", done.stderr


@pytest.mark.timeout(300)
def test_another_python_version_compiles_the_sources_instead(pyz: Path, tmp_path: Path) -> None:
    """Another Python finds a magic number that is not its own in every ``.pyc``: the archive
    runs all the same, from its sources (simulated by rewriting the magic numbers)."""
    other = tmp_path / "other.pyz"
    foreign = bytes([importlib.util.MAGIC_NUMBER[0] ^ 0x55]) + importlib.util.MAGIC_NUMBER[1:]
    with zipfile.ZipFile(pyz) as src, zipfile.ZipFile(other, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith(".pyc"):
                data = foreign + data[4:]
            dst.writestr(info, data)
    source = _from_source(other)
    assert "agent.commands.cli" in source and "anyio" in source, source
    done = subprocess.run(
        [sys.executable, str(other), "--version"], capture_output=True, text=True, timeout=60
    )
    assert done.stdout.strip() == "peer-agent 0.1.0", done.stderr


@pytest.mark.timeout(300)
def test_an_older_python_gets_one_line_and_exit_2_from_the_archive(pyz: Path) -> None:
    """``python3.10 peer-agent.pyz`` in a workload image too old for the agent: one line, exit
    2, no traceback, from every Python older than 3.11 this machine has (each compiles the
    archive's sources: the bytecode is for the Python that built it)."""
    olds = older_pythons()
    assert olds, f"no Python older than 3.11 here (looked at {OLD_PYTHONS})"
    for python in olds:
        done = subprocess.run(
            [str(python), str(pyz), "wait", "--peers", "2"],
            env={"PATH": "/usr/bin:/bin"},  # a pod's: no LANG, no PYTHONPATH
            capture_output=True,
            timeout=60,
        )
        said = done.stderr.decode()
        assert done.returncode == 2 and said.count("\n") == 1, (python, said)
        assert said.startswith("peer-agent needs Python ≥ 3.11; this is 3."), said
        assert said.endswith(f" at {python}\n"), said
