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
import tempfile
from pathlib import Path

import pytest

from tests.harness.fixtures import require_root
from tests.harness.install import REPO

# The seed example, and a workload whose image files (bind-mounted from the checkout's
# tests/harness/apps) reach a non-root container.
TESTS = (
    "tests/e2e/test_agent.py::test_seed_example_all_pods_succeed",
    "tests/e2e/test_mpi.py::test_mpirun_over_real_sshd_and_the_job_completes",
)


@pytest.mark.timeout(300)
def test_e2e_from_a_clone_in_a_0700_directory_under_home() -> None:
    require_root()
    # Under the home directory, as a new contributor clones: there (/root) also lives this
    # machine's Python (pyenv), which a non-root container sees through an empty tmpfs.
    private = Path(tempfile.mkdtemp(prefix="peer-agent-checkout-", dir=Path.home()))
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
            [venv / "bin" / "python", "-m", "pytest", "-q", "-p", "no:cacheprovider", *TESTS],
            cwd=clone,
            env=env,
            capture_output=True,
            text=True,
            timeout=200,
        )
    finally:
        shutil.rmtree(private, ignore_errors=True)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert f"{len(TESTS)} passed" in proc.stdout
