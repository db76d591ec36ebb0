"""On a Python older than 3.11 every entry point says so in one line and exits 2, before any
import that would fail there: a workload image with 3.10 (older CUDA bases) gets a sentence,
not an ImportError traceback. The zipapp's own entry is tested in test_zipapp.py."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.oldpythons import OLD_PYTHONS, older_pythons

pytestmark = pytest.mark.timeout(60)

REPO = Path(__file__).resolve().parents[2]
# A 3.10 as the agent's imports see it: no enum.StrEnum, no datetime.UTC; sys says 3.10.12.
FAKE_310 = """
import datetime, enum, sys
del enum.StrEnum, datetime.UTC
sys.version_info = (3, 10, 12, "final", 0)
sys.executable = "/usr/bin/python3"
sys.argv = ["peer-agent", "wait", "--peers", "2"]
try:
    {run}
finally:
    print(sorted(name for name in sys.modules if name.split(".")[0] == "agent"))
"""
ENTRY_POINTS = {
    "python -m agent": (
        'import runpy; runpy.run_module("agent", run_name="__main__", alter_sys=True)'
    ),
    # What the `peer-agent` script pip writes does: load the entry point, exit with its value.
    "peer-agent": (
        "from importlib.metadata import entry_points; "
        '[script] = entry_points(group="console_scripts", name="peer-agent"); '
        "sys.exit(script.load()())"
    ),
}
LINE_310 = "peer-agent needs Python ≥ 3.11; this is 3.10.12 at /usr/bin/python3\n"
OLD = older_pythons()


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_a_faked_310_gets_one_line_and_exit_2_before_the_cli_is_imported(entry: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", FAKE_310.format(run=ENTRY_POINTS[entry])],
        cwd=REPO,
        capture_output=True,
        timeout=30,
    )
    assert done.stderr.decode() == LINE_310
    assert done.returncode == 2
    # Nothing of the agent but the package and its entry module was imported.
    assert set(ast.literal_eval(done.stdout.decode())) <= {"agent", "agent.__main__"}, done.stdout


@pytest.mark.parametrize("python", OLD or [None], ids=lambda p: p.name if p else "none")
def test_a_real_older_python_gets_one_line_and_exit_2(python: Path | None) -> None:
    """``python3.N -m agent`` from this checkout, in a pod's environment: no LANG (a C locale,
    where Python 3.6 would print ``≥`` as an escape), nothing else set."""
    assert python is not None, f"no Python older than 3.11 here (looked at {OLD_PYTHONS})"
    done = subprocess.run(
        [str(python), "-B", "-m", "agent", "wait", "--peers", "2"],
        env={"PATH": os.environ["PATH"], "PYTHONPATH": str(REPO)},
        capture_output=True,
        timeout=30,
    )
    version = subprocess.run(
        [str(python), "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout.strip()
    line = f"peer-agent needs Python ≥ 3.11; this is {version} at {python}\n"
    assert (done.returncode, done.stderr.decode(), done.stdout) == (2, line, b"")
