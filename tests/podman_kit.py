"""Build and run the peer-agent image with podman, offline, on a Debian base made by debootstrap.

No registry is reachable, so nothing is ever pulled: the base image is a debootstrap'ed Debian
(`--variant=minbase` plus python3 and pip) imported with `podman import`, and the build installs
from a wheelhouse downloaded once from the Python package index. Everything slow is cached under
``PEER_AGENT_TEST_CACHE`` (default /var/cache/peer-agent-test): the root filesystem tarball, the
wheelhouse and podman's own storage, so a rerun costs a few seconds.

podman is configured through CONTAINERS_CONF / CONTAINERS_STORAGE_CONF files of our own, so the
machine's configuration is neither used nor changed.
"""

from __future__ import annotations

import hashlib
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("PEER_AGENT_TEST_CACHE", "/var/cache/peer-agent-test"))
SUITE = "bookworm"
BASE_PACKAGES = ("python3", "python3-pip")
BASE_PYTHON = "3.11"  # bookworm's python3
# What the image build reads (the rest of the repository must not reach the image).
CONTEXT_FILES = ("pyproject.toml", "README.md", "LICENSE", "Dockerfile", ".dockerignore")
CONTEXT_DIRS = ("agent", "tools")


@dataclass(frozen=True)
class Podman:
    """A podman with our configuration; ``run`` returns the finished process."""

    env: dict[str, str]

    def run(
        self, *args: str, timeout: float = 600, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["podman", *args], env=self.env, capture_output=True, text=True, timeout=timeout,
            check=check,
        )  # fmt: skip

    def image_exists(self, ref: str) -> bool:
        return self.run("image", "exists", ref, check=False).returncode == 0

    def size(self, ref: str) -> int:
        return int(self.run("image", "inspect", "--format", "{{.Size}}", ref).stdout.strip())


def podman() -> Podman:
    """podman configured for this machine: runc, cgroupfs, no network, overlay (else vfs)."""
    conf = CACHE / "podman"
    conf.mkdir(parents=True, exist_ok=True)
    # runc may only lower rlimits here (no CAP_SYS_RESOURCE in this sandbox), and podman's
    # root default for nproc is above the hard limit: ask for no more than we have.
    nproc = min(4096, resource.getrlimit(resource.RLIMIT_NPROC)[1])
    (conf / "containers.conf").write_text(
        "[containers]\n"
        'netns = "none"\n'
        f'default_ulimits = ["nofile=1024:1024", "nproc={nproc}:{nproc}"]\n'
        "[engine]\n"
        'runtime = "runc"\n'
        'cgroup_manager = "cgroupfs"\n'
        'events_logger = "file"\n'
    )
    env = dict(os.environ)
    env["CONTAINERS_CONF"] = str(conf / "containers.conf")
    env["CONTAINERS_STORAGE_CONF"] = str(conf / "storage.conf")
    for driver in ("overlay", "vfs"):
        (conf / "storage.conf").write_text(
            "[storage]\n"
            f'driver = "{driver}"\n'
            f'graphroot = "{CACHE / ("storage-" + driver)}"\n'
            f'runroot = "/run/peer-agent-test/{driver}"\n'
        )
        p = Podman(env)
        if p.run("info", check=False, timeout=60).returncode == 0:
            return p
    raise RuntimeError(f"podman works with neither overlay nor vfs storage: {p.run('info').stderr}")


def _mirror() -> str:
    """The Debian mirror apt already uses on this machine (we name none of our own)."""
    sources = Path("/etc/apt/sources.list.d/debian.sources")
    if sources.exists():
        for line in sources.read_text().splitlines():
            if line.startswith("URIs:"):
                return line.split()[1]
    for line in Path("/etc/apt/sources.list").read_text().splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0] == "deb":
            return parts[1] if not parts[1].startswith("[") else parts[2]
    raise RuntimeError("no Debian mirror configured for apt")


def base_image(p: Podman) -> str:
    """The Debian base (python3 + pip), built once with debootstrap and kept in the cache."""
    key = hashlib.sha256(f"{SUITE} {BASE_PACKAGES}".encode()).hexdigest()[:12]
    ref = f"localhost/peer-agent-test/debian-{SUITE}:{key}"
    if p.image_exists(ref):
        return ref
    tarball = CACHE / f"debian-{SUITE}-{key}.tar"
    if not tarball.exists():
        with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
            root = Path(tmp) / "rootfs"
            subprocess.run(
                ["debootstrap", "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}",
                 SUITE, str(root), _mirror()],
                check=True, capture_output=True, timeout=900,
            )  # fmt: skip
            for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
                shutil.rmtree(root / junk, ignore_errors=True)
            partial = tarball.with_suffix(".partial")
            subprocess.run(["tar", "-C", str(root), "-cf", str(partial), "."], check=True)
            partial.rename(tarball)  # only a complete tarball is ever cached
    p.run("import", "--change", 'CMD ["/bin/sh"]', str(tarball), ref, timeout=300)
    return ref


def wheelhouse() -> Path:
    """The dependencies (and setuptools, for building our wheel) as wheels for the base's Python."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    wanted = sorted([*project["project"]["dependencies"], *project["build-system"]["requires"]])
    key = hashlib.sha256(repr((BASE_PYTHON, wanted)).encode()).hexdigest()[:12]
    house = CACHE / f"wheelhouse-{key}"
    if not (house / ".complete").exists():
        house.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check",
             "--only-binary=:all:", f"--python-version={BASE_PYTHON}", "-d", str(house), *wanted],
            check=True, capture_output=True, timeout=600,
        )  # fmt: skip
        (house / ".complete").touch()
    return house


def build_image(p: Podman, base: str, tag: str) -> None:
    """`podman build` of our Dockerfile on ``base``, offline, from a context of what it needs.

    Without the layer cache: buildah 1.28 reused a `COPY . .` layer after the sources changed,
    and the test would have checked a stale agent. The base and the wheels stay cached.
    """
    with tempfile.TemporaryDirectory() as tmp:
        ctx = Path(tmp)
        for name in CONTEXT_FILES:
            if (REPO / name).exists():
                shutil.copy2(REPO / name, ctx / name)
        for name in CONTEXT_DIRS:
            shutil.copytree(REPO / name, ctx / name, ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copytree(wheelhouse(), ctx / "wheelhouse")
        p.run(
            "build", "--pull=never", "--no-cache", "-t", tag, "-f", str(ctx / "Dockerfile"),
            "--build-arg", f"BASE_IMAGE={base}",
            "--build-arg", "PIP_NO_INDEX=1",
            "--build-arg", "PIP_FIND_LINKS=/src/wheelhouse",
            str(ctx),
            timeout=900,
        )  # fmt: skip
    p.run("image", "prune", "--force")  # the previous build and the build stage: disk, not cache
