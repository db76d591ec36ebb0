"""The cluster in a box works from any checkout path: a clone in a 0700 directory.

Pods run as a non-root user, who cannot enter such a directory (a clone under /root, a
`mktemp -d` folder); the harness must not run anything from there (see harness/install.py).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.harness.fixtures import require_root
from tests.harness.install import REPO

ONE_TEST = "tests/e2e/test_agent.py::test_seed_example_all_pods_succeed"


@pytest.mark.timeout(240)
def test_e2e_from_a_clone_in_a_0700_directory(tmp_path: Path) -> None:
    require_root()
    private = tmp_path / "home"
    private.mkdir(mode=0o700)
    os.chmod(private, 0o700)
    clone = private / "peer-agent"
    try:
        subprocess.run(
            ["git", "clone", "-q", "--no-hardlinks", str(REPO), str(clone)],
            check=True,
            timeout=60,
        )
        # The clone's own venv, as `make venv` makes it there, with this venv's packages but
        # not its editable install of this checkout: the clone's agent and tests are imported.
        venv = clone / ".venv"
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
        [site] = venv.glob("lib/python*/site-packages")
        (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
        env.pop("PYTHONPATH", None)
        proc = subprocess.run(
            [venv / "bin" / "python", "-m", "pytest", "-q", "-p", "no:cacheprovider", ONE_TEST],
            cwd=clone,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
    finally:
        shutil.rmtree(private, ignore_errors=True)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "1 passed" in proc.stdout
