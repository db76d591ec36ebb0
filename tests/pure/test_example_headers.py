"""Every example under k8s/examples says, at its top, which images it runs, where the
peer-agent image comes from (nothing is published yet) and how to point it at a registry: a
user who copies an example as it is gets an ImagePullBackOff otherwise."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "k8s" / "examples"
_IMAGE = re.compile(r"^[ \t-]*image:\s*([^\s#]+)", re.MULTILINE)
_ON_BASE = re.compile(r"^\s*-\s*\.\./(\.\./base|seed)\s*$", re.MULTILINE)


def _first_file(example: Path) -> Path:
    """What a user opens first: the kustomization, else the example's one YAML file."""
    kustomization = example / "kustomization.yaml"
    if kustomization.exists():
        return kustomization
    [only] = sorted(example.glob("*.yaml"))
    return only


def _header(path: Path) -> str:
    lines = path.read_text().splitlines()
    end = next(i for i, line in enumerate(lines) if not line.startswith("#"))
    return "\n".join(lines[:end])


def _images(example: Path) -> set[str]:
    """The images the example's own files name, and the base's when it builds on the base."""
    text = "\n".join(p.read_text() for p in sorted(example.glob("*.yaml")))
    images = set(_IMAGE.findall(text))
    if _ON_BASE.search(text):
        images.add("peer-agent:0.1.0")
    return images


@pytest.mark.timeout(30)
@pytest.mark.parametrize("example", sorted(EXAMPLES.iterdir()), ids=lambda p: p.name)
def test_header_names_every_image_and_how_to_move_it(example: Path) -> None:
    header = _header(_first_file(example))
    images = _images(example)
    assert "peer-agent:0.1.0" in images, example
    for image in images:
        assert image in header, f"{example.name}: the header does not name {image}"
    assert "make image" in header and "nothing is published" in header, example.name
    assert "registry" in header and "images:" in header, example.name
