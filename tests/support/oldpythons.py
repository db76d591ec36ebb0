"""The Pythons older than the agent's minimum that this machine has: the interpreters a user's
workload image may still carry (3.10 in older CUDA bases, 3.8 in Ubuntu 20.04's).

Looked for where they live here (pyenv's versions, beside this machine's 3.11) and where a
distribution puts them; a pyenv shim is not one (it refuses versions not selected).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

__all__ = ["OLD_PYTHONS", "older_pythons"]

_PLACES = ("/usr/bin", "/usr/local/bin", str(Path.home() / ".pyenv" / "versions" / "*" / "bin"))
_VERSION = re.compile(r"python3\.(\d+)$")
#: where older_pythons() looks, for a failure message to name
OLD_PYTHONS = ", ".join(f"{place}/python3.N" for place in _PLACES)


def older_pythons(minimum: tuple[int, int] = (3, 11)) -> list[Path]:
    """One interpreter per minor version below ``minimum`` (and at least 3.6), oldest first."""
    found: dict[int, Path] = {}
    for place in _PLACES:
        for path in sorted(Path("/").glob(place.lstrip("/") + "/python3.*")):
            match = _VERSION.search(path.name)
            if match is None or not 6 <= int(match.group(1)) < minimum[1]:
                continue
            minor = int(match.group(1))
            if minor not in found and _runs(path, minor):
                found[minor] = path
    return [found[minor] for minor in sorted(found)]


def _runs(path: Path, minor: int) -> bool:
    try:
        done = subprocess.run(
            [str(path), "-c", "import sys; print(sys.version_info[1])"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except OSError:
        return False
    return done.returncode == 0 and done.stdout.strip() == str(minor)
