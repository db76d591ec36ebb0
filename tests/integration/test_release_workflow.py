"""The release workflow (.github/workflows/release.yml) passes a linter made for GitHub Actions,
which catches the mistakes that would only show on the day of a release; and it releases what
the README says it does.

The linter is jactionlint: actionlint's checks (workflow syntax, ``${{ }}`` types, the inputs and
outputs of well-known actions, shellcheck on ``run:``) and zizmor's security audits, from a
wheel that bundles the binary. Its pedantic profile, offline, every finding an error.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.timeout(120)

REPO = Path(__file__).resolve().parents[2]
WORKFLOW = REPO / ".github" / "workflows" / "release.yml"
LINT = [
    str(Path(sys.executable).parent / "jactionlint"),
    "--no-online",
    "--strict-exit",
    "--profile=pedantic",
    "--shellcheck=shellcheck",  # must exist: the scripts of run: are checked, not skipped
    "--pyflakes=",
    "--no-color",
]


def _lint(*paths: Path, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    assert shutil.which("shellcheck"), "shellcheck is missing: make deps installs it"
    return subprocess.run(
        [*LINT, *map(str, paths)], cwd=cwd, capture_output=True, text=True, timeout=60
    )


def _steps(workflow: dict[str, Any], job: str) -> list[dict[str, Any]]:
    return list(workflow["jobs"][job]["steps"])


def _uses(workflow: dict[str, Any], job: str, action: str) -> dict[str, Any]:
    [step] = [s for s in _steps(workflow, job) if s.get("uses", "").startswith(f"{action}@")]
    return step


def test_every_workflow_passes_the_linter() -> None:
    done = _lint()  # the repository: every workflow under .github/workflows
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("mistake", "before", "after", "finding"),
    [
        ("a misspelt input", "platforms: linux/", "platform: linux/", '"platform" is not defined'),
        ("a job it does not need", "needs.image.outputs", "needs.imag.outputs", '"imag"'),
        ("a credential left", "persist-credentials: false", "fetch-depth: 1", "artipacked"),
        ("shell quoting", '"$GITHUB_OUTPUT"', "$GITHUB_OUTPUT", "shellcheck"),
    ],
)
def test_the_linter_finds_a_planted_mistake(
    mistake: str, before: str, after: str, finding: str, tmp_path: Path
) -> None:
    text = WORKFLOW.read_text()
    assert before in text, mistake
    planted = tmp_path / ".github" / "workflows" / "release.yml"
    planted.parent.mkdir(parents=True)
    planted.write_text(text.replace(before, after, 1))
    done = _lint(planted, cwd=tmp_path)
    assert done.returncode != 0, mistake
    assert finding in done.stdout, done.stdout


def test_a_v_tag_releases_the_files_and_a_multi_arch_image_with_sbom_and_provenance() -> None:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    assert workflow[True] == {"push": {"tags": ["v*"]}}  # YAML 1.1 reads the key `on` as True
    scripts = "\n".join(s.get("run", "") for s in _steps(workflow, "python"))
    assert "python -m build" in scripts and "twine check --strict dist/*" in scripts
    assert "tools/build_zipapp.py -o dist/peer-agent.pyz" in scripts
    image = _uses(workflow, "image", "docker/build-push-action")["with"]
    assert image["platforms"] == "linux/amd64,linux/arm64"
    assert (image["push"], image["sbom"], image["provenance"]) == (True, True, "mode=max")
    assert image["context"] == "." and "file" not in image  # the Dockerfile, as `make image`
    assert _uses(workflow, "image", "docker/login-action")["with"]["registry"] == "ghcr.io"
    [release] = [s["run"] for s in _steps(workflow, "release") if "run" in s]
    assert 'gh release create "$TAG" dist/*' in release
