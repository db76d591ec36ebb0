"""The README and docs/ stay what the README promises: short, starting with the user, every link
landing somewhere, every option in the configuration reference, the exit codes as the code has
them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from agent.exitcodes import ExitCode
from agent.options import OPTIONS

pytestmark = pytest.mark.timeout(30)

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
PAGES = [README, *sorted((REPO / "docs").glob("*.md"))]
_FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
_LINK = re.compile(r"\]\(([^)\s]+)\)")


def _prose(page: Path) -> str:
    return _FENCE.sub("", page.read_text())


def _anchors(page: Path) -> set[str]:
    """GitHub's ids for a page's headings: lower case, punctuation dropped, spaces to dashes."""
    headings = re.findall(r"^#+ (.+)$", _prose(page), re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


def test_readme_is_short_and_starts_with_the_user() -> None:
    text = README.read_text()
    assert len(text.split()) < 1500
    first_screen = "\n".join(text.splitlines()[:60])
    for part in ("## Before and after", "nslookup", "## Getting the image and the package"):
        assert part in first_screen, part
    commands = "\n".join(text.splitlines()[:70])
    assert "make demo " in commands and "make test " in commands


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_lands(page: Path) -> None:
    for target in _LINK.findall(_prose(page)):
        if re.match(r"[a-z]+:", target):
            continue  # another site
        path_part, _, anchor = target.partition("#")
        path = (page.parent / path_part).resolve() if path_part else page
        assert path.exists(), f"{page.name}: {target}"
        if anchor:
            assert anchor in _anchors(path), f"{page.name}: {target}: no such heading"


def test_the_configuration_reference_has_every_option() -> None:
    reference = (REPO / "docs" / "configuration.md").read_text()
    for option in OPTIONS:
        assert f"`{option.flag}" in reference, option.flag
        assert option.env in reference, option.env


def test_the_readme_exit_codes_are_the_codes_the_agent_uses() -> None:
    section = README.read_text().split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| (\S+) \| .* \| (\S+) \|$", section, re.MULTILINE)
    policies = dict(rows)  # the header row has no single-word cells
    assert list(policies) == [*(str(int(c)) for c in ExitCode), "128+n"]
    assert policies == {
        "0": "—",
        "1": "Count",
        "2": "FailJob",
        "3": "Count",
        "4": "FailJob",
        "128+n": "Ignore",
    }
