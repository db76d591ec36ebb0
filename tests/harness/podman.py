"""A real container runtime for chosen images: podman runs the built image inside the pod.

With `ClusterOptions(podman=PodmanRuntime(...))`, a container whose image repository is listed
runs as that image under podman instead of as a host process: in the pod's network namespace
(`--network ns:/run/netns/<pod>`), with the pod's hostname, the /etc/hosts and resolv.conf
kubelet wrote for the pod, its emptyDirs, and the securityContext enforced by the runtime
(user, capabilities, `readOnlyRootFilesystem`, `allowPrivilegeEscalation: false`). The image
is whatever podman has under that reference (tests/podman_kit.py builds it offline).
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.harness.workload import Security

__all__ = ["PodmanRuntime"]


@dataclass(frozen=True)
class PodmanRuntime:
    """podman's environment (its configuration files) and image repository -> local image."""

    env: tuple[tuple[str, str], ...]
    images: tuple[tuple[str, str], ...]

    def image_for(self, repo: str) -> str | None:
        return dict(self.images).get(repo)

    def run_argv(
        self,
        *,
        name: str,
        image: str,
        netns: str,
        hostname: str,
        etc: Path,
        env: Mapping[str, str],
        security: Security,
        mounts: Sequence[tuple[Path, str]],
        command: Sequence[str],
        args: Sequence[str],
    ) -> list[str]:
        """`podman run` for one container of the pod (in the foreground: its output is the log)."""
        argv = ["podman", "run", "--rm", "--pull=never", f"--name={name}"]
        argv += [f"--network=ns:/run/netns/{netns}", f"--hostname={hostname}"]
        argv += [
            "-v",
            f"{etc / 'hosts'}:/etc/hosts:ro",
            "-v",
            f"{etc / 'resolv.conf'}:/etc/resolv.conf:ro",
        ]
        argv += [arg for source, target in mounts for arg in ("-v", f"{source}:{target}")]
        argv += [arg for key, value in env.items() for arg in ("-e", f"{key}={value}")]
        if security.run_as_user is not None:
            group = security.run_as_group if security.run_as_group is not None else 0
            argv.append(f"--user={security.run_as_user}:{group}")
        argv += [f"--cap-drop={c}" for c in security.drop]
        argv += [f"--cap-add={c}" for c in security.add]
        if security.read_only_root:
            argv.append("--read-only")
        if security.no_new_privileges:
            argv += ["--security-opt", "no-new-privileges"]
        if command:
            argv += [f"--entrypoint={command[0]}", image, *command[1:], *args]
        else:
            argv += [image, *args]
        return argv

    def remove(self, name: str) -> None:
        """Remove the container if it is still there (its podman process was killed)."""
        subprocess.run(
            ["podman", "rm", "--force", "--time=0", name],
            env=dict(self.env),
            capture_output=True,
            timeout=60,
            check=False,
        )
