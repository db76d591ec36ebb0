"""Build peer-agent.pyz: the agent and its pure-Python dependencies in one file.

The zipapp runs with any Python >= 3.11 (`python3 peer-agent.pyz wait ...`), so a user can copy
it out of our image into their own workload image or an emptyDir instead of rebuilding on our
base. Dependencies are resolved for the oldest supported Python, so the back-ports that only old
Pythons need (typing_extensions for anyio) are inside whatever Python builds it.

    python3 tools/build_zipapp.py -o dist/peer-agent.pyz [--find-links DIR --no-index] [SOURCE]

SOURCE is a project directory or a built wheel (default: the current directory). Pass the pip
options for an offline build (a wheelhouse) through --find-links and --no-index.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import zipapp
from pathlib import Path

OLDEST_PYTHON = "3.11"
# Runs the same code as `python -m agent` so the exit code is the CLI's.
MAIN = 'import runpy\nrunpy.run_module("agent", run_name="__main__", alter_sys=True)\n'


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", nargs="?", default=".", help="project directory or wheel")
    parser.add_argument("-o", "--output", type=Path, required=True)
    parser.add_argument("--find-links", action="append", default=[], metavar="DIR")
    parser.add_argument("--no-index", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        wheels = tmpdir / "wheels"
        pip_index = [f"--find-links={d}" for d in args.find_links]
        pip_index += ["--no-index"] if args.no_index else []
        source = Path(args.source)
        if source.is_dir():
            # Our own wheel for the running Python; it is pure, so it fits every Python.
            _pip("wheel", "--no-deps", "-w", str(wheels), *pip_index, str(source))
            wheel = next(wheels.glob("peer_agent-*.whl"))
        else:
            wheel = source
        app = tmpdir / "app"
        _pip(
            "install",
            "--target", str(app),
            "--no-compile",  # byte-code is per Python version; the importer compiles in memory
            "--only-binary=:all:",
            f"--python-version={OLDEST_PYTHON}",
            "--implementation=py",
            "--abi=none",
            "--platform=any",
            f"--find-links={wheels if source.is_dir() else wheel.parent}",
            *pip_index,
            str(wheel),
        )  # fmt: skip
        shutil.rmtree(app / "bin", ignore_errors=True)  # console scripts: meaningless inside
        (app / "__main__.py").write_text(MAIN)
        args.output.parent.mkdir(parents=True, exist_ok=True)
        zipapp.create_archive(app, args.output, interpreter="/usr/bin/env python3", compressed=True)
    print(f"{args.output}: {args.output.stat().st_size} bytes")
    return 0


def _pip(*args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args], check=True
    )


if __name__ == "__main__":
    sys.exit(main())
