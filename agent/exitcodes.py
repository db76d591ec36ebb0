"""Exit codes are an API: podFailurePolicy rules key on them (the README's table)."""

from __future__ import annotations

import enum

__all__ = ["ExitCode", "signal_exit_code"]


class ExitCode(enum.IntEnum):
    OK = 0  # barrier passed
    INTERNAL = 1  # a bug: traceback printed
    USAGE = 2  # configuration or usage error
    TIMEOUT = 3  # timed out; the message lists each missing peer and why
    ABORTED = 4  # peers disagree, or this pod was refused


def signal_exit_code(signum: int) -> int:
    """What a shell reports for a process ended by signal ``signum`` (143 for SIGTERM)."""
    return 128 + signum
