"""Build peer-agent.pyz: the agent and its pure-Python dependencies in one file.

The zipapp runs with any Python >= 3.11 (`python3 peer-agent.pyz wait ...`), so a user can copy
it out of our image into their own workload image or an emptyDir instead of rebuilding on our
base; an older Python gets one line saying so and exit 2 (agent/__main__.py checks first).
Dependencies are resolved for the oldest supported Python, so the back-ports that only old
Pythons need (typing_extensions for anyio) are inside whatever Python builds it.

    python3 tools/build_zipapp.py -o dist/peer-agent.pyz [--find-links DIR --no-index] [SOURCE]

SOURCE is a project directory or a built wheel (default: the current directory). Pass the pip
options for an offline build (a wheelhouse) through --find-links and --no-index.

The archive carries each module's bytecode beside its source (``mod.pyc`` next to ``mod.py``,
the layout zipimport reads), compiled by the Python that builds it or by ``--python PYTHON``:
that Python version starts the agent from the archive as fast as from an installed wheel, where
compiling every module from source in memory took 240 ms of CPU against 90. The bytecode is
"unchecked-hash", so zipimport neither stats nor re-reads the source, and stored uncompressed
(inflating it cost 7 % of the start); the sources, read only by other Python versions, are
compressed. Another Python version finds a magic number that is not its own, ignores the
bytecode and compiles the source in memory, as an archive without bytecode does.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

OLDEST_PYTHON = "3.11"
# The same code as `python -m agent` (agent/__main__.py), so the exit code is the CLI's; like
# that module, valid Python 3.6, so that an older Python reaches its version check.
MAIN = "from agent.__main__ import run\n\nrun()\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", nargs="?", default=".", help="project directory or wheel")
    parser.add_argument("-o", "--output", type=Path, required=True)
    parser.add_argument("--find-links", action="append", default=[], metavar="DIR")
    parser.add_argument("--no-index", action="store_true")
    parser.add_argument(
        "--python",
        default=sys.executable,
        help="the Python whose bytecode the archive carries (default: this one)",
    )
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
            "--no-compile",  # compiled below, in the layout zipimport reads
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
        version = _compile(app, args.python)
        args.output.parent.mkdir(parents=True, exist_ok=True)
        _archive(app, args.output)
    print(f"{args.output}: {args.output.stat().st_size} bytes, bytecode for Python {version}")
    return 0


def _compile(app: Path, python: str) -> str:
    """``mod.pyc`` beside every ``mod.py`` (``-b``: zipimport does not look in ``__pycache__``);
    returns the version of the Python that compiled them."""
    run = [python, "-m", "compileall", "-q", "-b", "--invalidation-mode", "unchecked-hash"]
    subprocess.run([*run, str(app)], check=True)
    version = [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"]
    return subprocess.run(version, check=True, capture_output=True, text=True).stdout.strip()


def _archive(app: Path, output: Path) -> None:
    """What ``zipapp.create_archive`` writes (a shebang line, then the zip), but the bytecode
    stored as it is: inflating it cost 7 % of the start. Sources, read only by another Python
    version, stay compressed."""
    with output.open("wb") as out:
        out.write(b"#!/usr/bin/env python3\n")
        with zipfile.ZipFile(out, "w") as archive:
            for path in sorted(p for p in app.rglob("*") if p.is_file()):
                stored = path.suffix == ".pyc"
                archive.write(
                    path,
                    path.relative_to(app).as_posix(),
                    compress_type=zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED,
                )
    output.chmod(0o755)


def _pip(*args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args], check=True
    )


if __name__ == "__main__":
    sys.exit(main())
