"""The one exception root, and whose fault each error is.

Every error the agent raises on purpose derives from :class:`PeerAgentError` and carries the exit
code the CLI turns it into; anything else reaching the CLI is a bug (exit 1, traceback).
"""

from __future__ import annotations

from collections.abc import Sequence

from agent.exitcodes import ExitCode

__all__ = [
    "BarrierAborted",
    "BarrierTimeout",
    "ConfigError",
    "OutputError",
    "PeerAgentError",
    "WireError",
    "leaf_error",
]


class PeerAgentError(Exception):
    """Root of every error peer-agent raises on purpose."""

    exit_code: ExitCode = ExitCode.INTERNAL


class ConfigError(PeerAgentError):
    """Bad flags, variables or files of this pod; carries every problem found, not the first."""

    exit_code = ExitCode.USAGE

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(self.problems))


class OutputError(PeerAgentError):
    """An output file could not be written (this pod's filesystem or paths)."""

    exit_code = ExitCode.USAGE


class BarrierTimeout(PeerAgentError):
    """The deadline passed; ``missing`` says who and why, ``hints`` the likely cause."""

    exit_code = ExitCode.TIMEOUT

    def __init__(self, message: str, *, missing: Sequence[str], hints: Sequence[str]) -> None:
        self.missing = tuple(missing)
        self.hints = tuple(hints)
        super().__init__(message)


class TokenMismatch(BarrierTimeout):
    """The deadline passed with peers missing because the pods do not share one token (this
    pod's proof was refused, or a peer's failed here): exit 4, as an abort, since trying again
    cannot help. Decided at the deadline, never earlier: a "refused" comes before the other side
    has proved anything, so acting on it at once would let anyone at a listed address fail the
    Job."""

    exit_code = ExitCode.ABORTED


class BarrierAborted(PeerAgentError):
    """Peers disagree on the job (count, uid, port) or this pod was refused (bad token)."""

    exit_code = ExitCode.ABORTED


class WireError(PeerAgentError):
    """A peer sent a malformed, oversized or unexpected message; only that connection is closed."""


def leaf_error(error: BaseException) -> BaseException:
    """The agent's own error inside task groups' wrapping (anyio groups what a task raised),
    else ``error`` itself: what the user must see."""
    if isinstance(error, BaseExceptionGroup):
        for exc in error.exceptions:
            found = leaf_error(exc)
            if isinstance(found, PeerAgentError):
                return found
    return error
