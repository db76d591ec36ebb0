"""What the pure core asks the runner to do: the effects it returns for every event.

The runner performs them and feeds back what happened (:mod:`agent.core.inputs`); it decides nothing
about the barrier itself. ``Released`` and ``Aborted`` are the verdicts as they happen (for the
log); ``Finish`` and ``Fail`` end the wait. Whoever performs them (the runner, the in-memory
cluster's nodes, the explorer) is an :class:`EffectHandler`, and :func:`dispatch` is the one place
that tells effects apart.
"""

from __future__ import annotations

from typing import Protocol, TypeVar, assert_never

from agent.core.log import LogLine
from agent.core.outcome import Outcome, ReleaseKind
from agent.errors import PeerAgentError
from agent.protocol.wire import Message
from agent.values import value

__all__ = [
    "Aborted",
    "Attempt",
    "Close",
    "Dial",
    "Effect",
    "EffectHandler",
    "Fail",
    "Finish",
    "Lookup",
    "ProbeAddress",
    "Released",
    "Report",
    "Send",
    "Sweep",
    "dispatch",
]


@value
class Attempt:
    """Resolve peer ``index``'s name afresh and probe its addresses; report :class:`Attempted`.
    ``instance``: only a hello from this instance counts (this pod's own name, which another
    instance of its index, an old pod still running, may share for a while). ``addresses``:
    probe these instead of asking DNS (they all refused a moment ago: ``agent.core.refused``).
    ``hello``: say hello on the agent's port whatever ``--probe`` is (a coordinator looking
    around asks a reached member whether the barrier was released there)."""

    index: int
    instance: str = ""
    addresses: tuple[str, ...] = ()
    hello: bool = False


@value
class Sweep:
    """Resolve the headless Service's own name (a bulk discovery round); report
    :class:`~agent.core.inputs.Swept`."""


@value
class ProbeAddress:
    """Probe one address of the Service; ``pushed``: a peer said hello from it (probe it
    first); report :class:`~agent.core.inputs.AddressProbed`."""

    address: str
    pushed: bool = False


@value
class Lookup:
    """Resolve peer ``index``'s own name, probing nothing; report
    :class:`~agent.core.inputs.LookedUp`: whether DNS gives a contact's address for the pod
    it claims to be (``agent.core.admission`` re-checks what it holds this way)."""

    index: int


@value
class Dial:
    """Member: open a session to its coordinator, pod ``index`` (0, or its group's in a tree of
    coordinators: ``agent.core.groups``), resolving its name afresh (or at ``addresses``, which
    all refused a moment ago); report :class:`~agent.core.inputs.Opened`, or
    :class:`~agent.core.inputs.DialFailed`."""

    addresses: tuple[str, ...] = ()
    index: int = 0


@value
class Send:
    conn: int
    message: Message


@value
class Close:
    conn: int


@value
class Report:
    """A line for the log."""

    line: LogLine


@value
class Released:
    """The verdict: this pod passes the barrier (``kind`` says through whom)."""

    kind: ReleaseKind


@value
class Aborted:
    """The verdict: peers disagree about the job; everyone exits 4."""

    reason: str


@value
class Finish:
    """The wait is over: return ``outcome`` (a sidecar keeps serving after it)."""

    outcome: Outcome


@value
class Fail:
    """The wait is over: raise ``error`` (timed out, aborted)."""

    error: PeerAgentError


Effect = (
    Attempt
    | Sweep
    | ProbeAddress
    | Lookup
    | Dial
    | Send
    | Close
    | Report
    | Released
    | Aborted
    | Finish
    | Fail
)


R = TypeVar("R", covariant=True)


class EffectHandler(Protocol[R]):
    """One method per effect: a handler that leaves one out is not an ``EffectHandler``, and
    mypy says so where it is handed to :func:`dispatch`. ``R``: what performing one gives (None,
    or an awaitable for the runner, whose sends and closes are awaited)."""

    def attempt(self, effect: Attempt, /) -> R: ...
    def sweep(self, effect: Sweep, /) -> R: ...
    def probe_address(self, effect: ProbeAddress, /) -> R: ...
    def lookup(self, effect: Lookup, /) -> R: ...
    def dial(self, effect: Dial, /) -> R: ...
    def send(self, effect: Send, /) -> R: ...
    def close(self, effect: Close, /) -> R: ...
    def report(self, effect: Report, /) -> R: ...
    def released(self, effect: Released, /) -> R: ...
    def aborted(self, effect: Aborted, /) -> R: ...
    def finish(self, effect: Finish, /) -> R: ...
    def fail(self, effect: Fail, /) -> R: ...


def dispatch(handler: EffectHandler[R], effect: Effect) -> R:
    """``handler``'s method for ``effect``. Exhaustive over :data:`Effect`: an effect added
    there without a case here fails mypy (``assert_never``)."""
    match effect:
        case Attempt():
            return handler.attempt(effect)
        case Sweep():
            return handler.sweep(effect)
        case ProbeAddress():
            return handler.probe_address(effect)
        case Lookup():
            return handler.lookup(effect)
        case Dial():
            return handler.dial(effect)
        case Send():
            return handler.send(effect)
        case Close():
            return handler.close(effect)
        case Report():
            return handler.report(effect)
        case Released():
            return handler.released(effect)
        case Aborted():
            return handler.aborted(effect)
        case Finish():
            return handler.finish(effect)
        case Fail():
            return handler.fail(effect)
        case _:
            assert_never(effect)
