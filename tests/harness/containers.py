"""How a container's process is started: the pod's namespaces, hostname, env, user and caps.

A "container" is a process on the host filesystem (images are not pulled: `image: bash` runs the
host's bash, `image: peer-agent` runs this checkout's agent through a `peer-agent` shim first on
PATH, installed by install.py; an image's own files, such as /opt/peer-agent/peer-agent.pyz,
are bind-mounted where the image has them). It runs in the pod's network namespace via
`ip netns exec`, which also bind-mounts the pod's /etc/netns files over /etc/hosts and
/etc/resolv.conf in a private mount namespace, in its own UTS namespace carrying the pod
hostname, as the securityContext's user, with the capability bounding set a container runtime
would give it.
"""

from __future__ import annotations

import os
import re
import shlex
import stat
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from tests.harness.workload import Container, Security, WorkloadError

# Entrypoint and default args of the images the examples name (by repository basename).
IMAGES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "peer-agent": (("peer-agent",), ()),
    "bash": ((), ("bash",)),
    "busybox": ((), ("sh",)),
    "alpine": ((), ("/bin/sh",)),
    "debian": ((), ("bash",)),
    "ubuntu": ((), ("bash",)),
    "python": ((), ("python3",)),
}

# containerd's and CRI-O's default capability set (what a container has unless it drops some).
DEFAULT_CAPS = (
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
)

BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Sets the pod hostname in the fresh UTS namespace, mounts emptyDirs, then becomes the container.
_LAUNCH = 'hostname "$0" && {mounts}exec "$@"'

_VAR_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def _blocked_ancestor(path: Path) -> Path | None:
    """The outermost directory above path that other users cannot traverse (e.g. /root)."""
    for parent in reversed(path.parents):
        if parent != Path("/") and not os.stat(parent).st_mode & stat.S_IXOTH:
            return parent
    return None


def python_mounts(stash: Path) -> str:
    """Shell that makes this Python readable to a non-root container, in its own mounts only.

    An image would ship its interpreter world-readable; here it may live under /root (pyenv).
    Inside the container's private mount namespace: park the interpreter's prefix on stash,
    hide the unreadable directory under an empty tmpfs (a container's fresh home), and put the
    prefix back in it. The host's mounts are untouched.
    """
    prefix = Path(sys.base_prefix).resolve()
    blocked = _blocked_ancestor(prefix / "x")
    if blocked is None:
        return ""
    inside = blocked / prefix.relative_to(blocked)
    return (
        f"mount --bind '{prefix}' '{stash}' && "
        f"mount -t tmpfs -o mode=755,size=1m tmpfs '{blocked}' && "
        f"mkdir -p '{inside}' && mount --bind '{stash}' '{inside}' && "
    )


def write_shim(directory: Path, command: Sequence[str]) -> Path:
    """A `peer-agent` executable that runs ``command`` (e.g. an installed wheel's `peer-agent`);
    by default the pods run the run's copy of the agent instead (install.py)."""
    directory.mkdir(parents=True, exist_ok=True)
    shim = directory / "peer-agent"
    shim.write_text(f'#!/bin/sh\nexec {shlex.join(command)} "$@"\n')
    shim.chmod(0o755)
    (directory / "stash").mkdir(exist_ok=True)
    return directory


def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes' $(VAR) expansion in command, args and env values ($$ escapes a $)."""

    def sub(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return env.get(name, match.group(0))

    return _VAR_REF.sub(sub, text)


def image_repo(image: str) -> str:
    """The image's repository basename: `registry.example/peer-agent:0.1.0` -> `peer-agent`."""
    return image.rsplit("/", 1)[-1].split("@")[0].split(":")[0]


def argv_of(container: Container, env: Mapping[str, str]) -> list[str]:
    """command + args, falling back to the image's entrypoint and default args."""
    entrypoint, default_args = IMAGES.get(image_repo(container.image), ((), ()))
    command = container.command or entrypoint
    args = container.args if (container.args or container.command) else default_args
    argv = [expand(a, env) for a in (*command, *args)]
    if not argv:
        raise WorkloadError(
            f"container {container.name}: no command and image {container.image!r} has no "
            "entrypoint the harness knows"
        )
    return argv


def merged_security(pod: Security, container: Security) -> Security:
    """Container fields win over the pod's, as in Kubernetes."""
    return Security(
        run_as_user=container.run_as_user if container.run_as_user is not None else pod.run_as_user,
        run_as_group=(
            container.run_as_group if container.run_as_group is not None else pod.run_as_group
        ),
        drop=container.drop,
        add=container.add,
        read_only_root=container.read_only_root,
        no_new_privileges=container.no_new_privileges,
    )


def setpriv_argv(security: Security) -> list[str]:
    """setpriv(1) options: the user, and a bounding set of runtime defaults - drop + add.

    Dropping NET_RAW from the bounding set also voids ping's file capability, so an ICMP probe
    then depends on net.ipv4.ping_group_range exactly as in a real pod.
    """
    caps = [] if "ALL" in security.drop else [c for c in DEFAULT_CAPS if c not in security.drop]
    caps += [c for c in security.add if c not in caps]
    bounding = ",".join(["-all", *(f"+{c.lower()}" for c in caps)])
    argv = ["setpriv", "--inh-caps=-all", f"--bounding-set={bounding}"]
    if security.run_as_user is not None:
        group = security.run_as_group if security.run_as_group is not None else 0
        argv += [f"--reuid={security.run_as_user}", f"--regid={group}", "--clear-groups"]
    return argv


def launch_argv(
    netns: str,
    hostname: str,
    argv: Sequence[str],
    security: Security,
    mounts: Sequence[tuple[Path, str]] = (),
    stash: Path | None = None,
) -> list[str]:
    """The full host command line that runs argv as a container of the pod in netns.

    stash: an empty host directory used to make Python reachable for a non-root user.
    """
    # A mount over a directory that holds another mount's source (an emptyDir at /tmp, where
    # pytest keeps the volumes) goes last, or it would hide that source.
    sources = [source for source, _ in mounts]
    ordered = sorted(mounts, key=lambda m: any(s.is_relative_to(m[1]) for s in sources))
    binds = "".join(
        f"mkdir -p '{target}' && mount --bind '{source}' '{target}' && "
        for source, target in ordered
    )
    if security.run_as_user not in (None, 0) and stash is not None:
        binds = python_mounts(stash) + binds
    script = _LAUNCH.format(mounts=binds)
    return [
        "ip",
        "netns",
        "exec",
        netns,
        "unshare",
        "--uts",
        "--",
        "sh",
        "-c",
        script,
        hostname,
        *setpriv_argv(security),
        "--",
        *argv,
    ]
