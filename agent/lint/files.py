"""`peer-agent lint`: the wiring mistakes in a user's Job and Service YAML, before `kubectl apply`.

Reading files is here; the rules are in :mod:`agent.lint.rules`. PyYAML is an optional extra
(``peer-agent[lint]``) imported only when YAML is read, so the agent itself runs without it.
Everything this module raises on purpose is a :class:`LintInputError` (exit code 2); findings are
returned, never raised.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

from agent.errors import PeerAgentError
from agent.exitcodes import ExitCode
from agent.lint.finding import Finding
from agent.lint.frameworks import FRAMEWORK_KINDS, lint_all
from agent.values import value

__all__ = [
    "Finding",
    "LintInputError",
    "LintReport",
    "format_finding",
    "lint_documents",
    "lint_paths",
]

_YAML_SUFFIXES = (".yaml", ".yml", ".json")
# `kind: List` can nest; real output never goes deeper than this.
_MAX_LIST_DEPTH = 8


class LintInputError(PeerAgentError):
    """The input could not be read or parsed: nothing was checked."""

    exit_code = ExitCode.USAGE


@value
class LintReport:
    """One run: every finding, and how many resources (Jobs, Services, the frameworks' kinds)
    were checked, so that a clean run can say what it looked at."""

    checked: int
    findings: tuple[Finding, ...]

    def summary(self) -> str:
        """``4 resources checked, no findings`` or ``…, 3 findings (2 errors, 1 warning)``."""
        checked = _count(self.checked, "resource")
        if not self.findings:
            return f"{checked} checked, no findings"
        warnings = sum(f.severity == "warning" for f in self.findings)
        errors = len(self.findings) - warnings
        split = ", ".join(
            _count(n, what) for n, what in ((errors, "error"), (warnings, "warning")) if n
        )
        return f"{checked} checked, {_count(len(self.findings), 'finding')} ({split})"


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"


def lint_documents(docs: Iterable[object], *, source: str) -> list[Finding]:
    """Check already-parsed YAML documents (anything that is not a mapping is ignored)."""
    return lint_all(list(_objects(docs, source)))


def lint_paths(paths: Sequence[str], *, stdin: TextIO) -> LintReport:
    """Check files, directories (their *.yaml, *.yml, *.json, recursively) and ``-`` (stdin).

    All documents are checked together, so a Job in one file finds its Service in another.
    Raises :class:`LintInputError` for a missing, unreadable or unparsable input, and when the
    input holds no Job or Service at all (nothing checked is not the same as clean).
    """
    if not paths:
        raise LintInputError("name a FILE, a DIR or - (standard input)")
    objects: list[tuple[str, dict[str, Any]]] = []
    for name, text in _read_all(paths, stdin):
        objects.extend(_objects(_parse(text, name), name))
    checked = sum(_checked(obj) for _, obj in objects)
    if not checked:
        shown = ", ".join(paths)
        raise LintInputError(
            "no Job or Service (nor JobSet, LeaderWorkerSet, TrainJob, PyTorchJob, TFJob, "
            "XGBoostJob, JAXJob, PaddleJob, MPIJob, Volcano Job) "
            f"found in {shown}; for a kustomization, render it first: "
            "kubectl kustomize DIR | peer-agent lint -"
        )
    return LintReport(checked, tuple(lint_all(objects)))


def _checked(obj: dict[str, Any]) -> bool:
    kind, group = obj.get("kind"), str(obj.get("apiVersion", "")).split("/")[0]
    if not isinstance(kind, str):  # a user's YAML: `kind: []` is text, not a crash
        return False
    return kind in ("Job", "Service") or (kind, group) in FRAMEWORK_KINDS


def format_finding(f: Finding) -> str:
    """One line: ``file: Kind/name: field: [warning: ]message; fix: ...``."""
    level = "warning: " if f.severity == "warning" else ""
    line = f"{f.file}: {f.obj}: {f.field}: {level}{f.message}; fix: {f.fix}"
    # A finding is one line whatever a user's names contain (logs, grep, CI annotations).
    return " ".join(line.split())


def _read_all(paths: Sequence[str], stdin: TextIO) -> Iterator[tuple[str, str]]:
    for path in paths:
        if path == "-":
            try:
                yield "<stdin>", stdin.read()
            except (OSError, UnicodeDecodeError) as e:
                raise LintInputError(f"cannot read standard input: {e}") from e
            continue
        p = Path(path)
        if p.is_dir():
            files = sorted(_yaml_files(p))
            if not files:
                raise LintInputError(f"{path}: no .yaml, .yml or .json files in directory")
            for f in files:
                yield str(f), _read_file(f)
        else:
            yield path, _read_file(p)


def _yaml_files(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        # Hidden directories (.git, editors' backups) are never manifests.
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if name.endswith(_YAML_SUFFIXES) and not name.startswith("."):
                yield Path(dirpath) / name


def _read_file(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise LintInputError(f"{path}: no such file or directory") from e
    except UnicodeDecodeError as e:
        raise LintInputError(f"{path}: not UTF-8 text ({e.reason})") from e
    except OSError as e:
        raise LintInputError(f"{path}: cannot read: {e.strerror or e}") from e


def _parse(text: str, name: str) -> list[object]:
    try:
        import yaml
    except ImportError as e:  # the agent itself does not need PyYAML
        raise LintInputError("reading YAML needs PyYAML: pip install 'peer-agent[lint]'") from e
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        return list(yaml.load_all(text, Loader=loader))
    except yaml.YAMLError as e:
        raise LintInputError(f"{name}: not valid YAML: {_one_line(str(e))}") from e
    except RecursionError as e:  # pathologically nested input
        raise LintInputError(f"{name}: YAML nested too deeply") from e


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _objects(docs: Iterable[object], name: str, depth: int = 0) -> Iterator[tuple[str, Any]]:
    """Mapping documents with their source; the items of ``kind: List`` stand for themselves."""
    for doc in docs:
        if not isinstance(doc, dict):
            continue
        if str(doc.get("kind", "")).endswith("List"):  # List, JobList, ... from kubectl get
            items = doc.get("items")
            if isinstance(items, list) and depth < _MAX_LIST_DEPTH:
                yield from _objects(items, name, depth + 1)
            continue
        yield name, doc
