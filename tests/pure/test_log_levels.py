"""Every log line has a level, decided with the line: text shows it as ``peer-agent: LEVEL:``,
JSON in a ``level`` field beside the fields it always had, and ``--log-level`` drops the lines
below it. The CLI's own printer, as ``main`` builds it from the config."""

from __future__ import annotations

import json

import pytest

from agent.commands.cli import _Printer, _timestamp
from agent.config.model import LogFormat, LogLevel
from agent.config.parse import build_config
from agent.core.log import LogKind, LogLine
from agent.topology.podfiles import PodFacts

pytestmark = pytest.mark.timeout(10)

LINES = [
    LogLine(
        LogKind.IGNORED,
        "contacts come from 10.0.0.9",
        {"addresses": ["10.0.0.9"]},
        level=LogLevel.DEBUG,
    ),
    LogLine(LogKind.REACHED_ALL, "reached all 3 peers", {"elapsed": 1.5}),
    LogLine(LogKind.RESTARTED, "example-job-2 restarted", {"peer": 2}, level=LogLevel.WARNING),
    LogLine(LogKind.ABORTED, "barrier aborted: peers disagree", level=LogLevel.ERROR),
]
TEXT = [
    "peer-agent: debug: contacts come from 10.0.0.9",
    "peer-agent: info: reached all 3 peers",
    "peer-agent: warning: example-job-2 restarted",
    "peer-agent: error: barrier aborted: peers disagree",
]


def _printed(capsys: pytest.CaptureFixture[str], log_format: LogFormat, lowest: str) -> list[str]:
    """What a pod prints with ``--log-format`` and ``--log-level`` as given."""
    values = {"peers": "3", "index": "1", "service": "svc", "namespace": "ns"}
    values |= {"log_format": log_format, "log_level": lowest}
    config = build_config("wait", values, PodFacts(hostname="example-job-1"))
    printer = _Printer(config.log_format, config.topology.index, config.log_level)
    for line in LINES:
        printer(line)
    out = capsys.readouterr()
    assert out.out == ""  # stdout is the workload's, and doctor's table
    return out.err.splitlines()


@pytest.mark.parametrize(
    ("lowest", "shown"),
    [("debug", TEXT), ("info", TEXT[1:]), ("warning", TEXT[2:]), ("error", TEXT[3:])],
)
def test_text_lines_show_their_level_and_those_below_the_lowest_are_dropped(
    capsys: pytest.CaptureFixture[str], lowest: str, shown: list[str]
) -> None:
    assert _printed(capsys, LogFormat.TEXT, lowest) == shown


def test_json_lines_carry_the_level_beside_every_field_they_had(
    capsys: pytest.CaptureFixture[str],
) -> None:
    records = [json.loads(line) for line in _printed(capsys, LogFormat.JSON, "debug")]
    assert [r["level"] for r in records] == ["debug", "info", "warning", "error"]
    assert [r["event"] for r in records] == ["ignored", "reached-all", "restarted", "aborted"]
    assert [r["msg"] for r in records] == [line.message for line in LINES]
    assert all(r["index"] == 1 and r["ts"] for r in records)
    assert records[0]["addresses"] == ["10.0.0.9"] and records[2]["peer"] == 2


def test_the_default_level_is_info(capsys: pytest.CaptureFixture[str]) -> None:
    assert _printed(capsys, LogFormat.TEXT, "") == TEXT[1:]


@pytest.mark.parametrize(
    "ns", [0, 1_765_097_285_370_999_999, 1_765_097_285_000_000_000, 1_765_097_285_999_500_000]
)
def test_a_json_lines_time_is_written_as_datetime_writes_it(ns: int) -> None:
    """The ``ts`` field keeps its form (what log readers parse) without datetime: UTC, to the
    millisecond, cut not rounded."""
    import datetime

    seconds, rest = divmod(ns, 1_000_000_000)
    when = datetime.datetime.fromtimestamp(seconds, datetime.UTC).replace(microsecond=rest // 1000)
    assert _timestamp(ns) == when.isoformat(timespec="milliseconds")
