"""An agent that counts what it does: ``BENCH_AGENT=bench/idlecount.py`` runs ``python -m agent``
with the runner's calls counted by kind, and on SIGUSR1 writes the counts so far (with its CPU
time and the clock) to ``$IDLE_COUNTS/<pid>.json``. ``bench.idlecut`` takes two such snapshots a
window apart: what a waiting agent does per second, by kind, at a few microseconds a count (the
wrappers only add to a Counter), so its CPU is the agent's own within a few per cent.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agent.core.agent import Agent
from agent.core.effects import Attempt, Report
from agent.io import runner
from agent.io.contacts import Contacts
from agent.io.executor import Executor
from agent.io.resolver import Resolver

COUNTS: Counter[str] = Counter()


def _effect_kind(effect: object) -> str:
    if isinstance(effect, Attempt):
        return "effect:Attempt(reuse)" if effect.addresses else "effect:Attempt(dns)"
    if isinstance(effect, Report):
        return f"log:{effect.line.kind.value}"
    return f"effect:{type(effect).__name__}"


def _wrap(owner: Any, name: str, count: Callable[..., None]) -> None:
    real = getattr(owner, name)

    @functools.wraps(real)
    def counted(*args: Any, **kwargs: Any) -> Any:
        count(*args, **kwargs)
        return real(*args, **kwargs)

    setattr(owner, name, counted)


def _install() -> None:
    def perform(_: Executor, effects: list[object]) -> None:
        COUNTS.update(_effect_kind(e) for e in effects)

    def handle(_: Agent, event: object, now: float) -> None:
        COUNTS[f"event:{type(event).__name__}"] += 1

    def poll(_: Agent, now: float) -> None:
        COUNTS["poll"] += 1

    def resolve(_: Contacts, name: str) -> None:
        COUNTS["dns:service" if name.startswith("bench-svc.") else "dns:by-name"] += 1

    def probe(_: Contacts, address: str, target: int | None, hello: bool = False) -> None:
        COUNTS["probe:by-name" if target is not None else "probe:service-address"] += 1

    def serve(_: Contacts, *args: object) -> None:
        COUNTS["incoming-connection"] += 1

    def transport(kind: str) -> Callable[..., None]:
        return lambda *args: COUNTS.update([f"dns-wire:{kind}"])

    _wrap(Executor, "perform", perform)
    _wrap(Agent, "handle", handle)
    _wrap(Agent, "poll", poll)
    _wrap(Contacts, "_resolve", resolve)
    _wrap(Contacts, "_probe", probe)
    _wrap(Contacts, "serve", serve)
    _wrap(Resolver, "_udp", transport("udp"))
    _wrap(Resolver, "_tcp", transport("tcp"))
    next_event = runner._next_event

    async def timed(receive: Any, within: float) -> Any:
        item = await next_event(receive, within)
        COUNTS["wakeup:event" if item is not None else "wakeup:timer"] += 1
        if item is None and within > 0:
            COUNTS["timer-wait-ms"] += round(1000 * within)
        return item

    runner._next_event = timed


def _dump(signum: int, frame: FrameType | None) -> None:
    t = os.times()
    out = {"at": time.monotonic(), "cpu_s": t.user + t.system, "counts": dict(COUNTS)}
    where = Path(os.environ.get("IDLE_COUNTS", "/tmp"), f"{os.getpid()}.json")
    where.write_text(json.dumps(out))


if __name__ == "__main__":
    _install()
    signal.signal(signal.SIGUSR1, _dump)
    sys.argv[0] = "peer-agent"
    from agent.__main__ import run

    run()
