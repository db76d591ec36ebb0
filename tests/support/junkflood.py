"""A flood of junk TCP connections against agents on loopback, bounded in count and time.

``python -m tests.support.junkflood --target 127.0.9.1:29300 --count 10000 --concurrency 1000``
opens ``count`` connections (round robin over the targets; from ``--source``, loopback addresses
of the flood's own, round robin too, if given: a few flooders), at most ``concurrency`` at once,
each doing one kind of junk in turn (see ``KINDS``): connect and close, garbage, binary, an
oversized line, an HTTP request, a hello from another job, a reset, or holding the connection
open silent or mid-hello until the server drops it (at most ``--hold`` seconds); ``--kind``
picks some. It stops at ``--deadline`` seconds (or on SIGTERM) whatever is left. Progress goes
to stderr (``made N``), the summary as one JSON object to stdout. Loopback targets only: it
refuses other addresses.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

KINDS = (
    "close",
    "garbage",
    "binary",
    "oversized",
    "http",
    "stranger-hello",
    "reset",
    "silent-hold",
    "half-hello-hold",
    "close",
)
_STRANGER = (
    b'{"v":2,"t":"hello","identity":{"job":"junk","uid":"","index":0,"peers":1,"port":1},'
    b'"role":"probe","nonce":"00"}\n'
)


async def _one(
    kind: str, host: str, port: int, hold: float, stats: Counter[str], source: str | None
) -> None:
    local = (source, 0) if source else None
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, local_addr=local), 5
        )
    except (OSError, TimeoutError) as exc:
        stats[f"connect-failed:{type(exc).__name__}"] += 1
        return
    stats["connected"] += 1
    sock = writer.get_extra_info("socket")
    try:
        if kind == "reset":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            return
        payload = {
            "close": b"",
            "garbage": b"hello? is this thing on\n",
            "binary": os.urandom(300) + b"\n",
            "oversized": b"{" * 65536,
            "http": b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
            "stranger-hello": _STRANGER,
            "silent-hold": b"",
            "half-hello-hold": b'{"v":2,"t":"hel',
        }[kind]
        if payload:
            writer.write(payload)
            await writer.drain()
        if kind.endswith("-hold") or kind in ("garbage", "binary", "http", "stranger-hello"):
            started = time.monotonic()
            try:  # read until the server closes
                while await asyncio.wait_for(reader.read(4096), hold):
                    pass
                stats["closed-by-server"] += 1
                if kind.endswith("-hold"):
                    stats["held-seconds-total"] += round(time.monotonic() - started)
            except TimeoutError:
                stats["still-open-at-hold-limit"] += 1
    except OSError as exc:
        stats[f"error:{type(exc).__name__}"] += 1
    finally:
        writer.transport.abort()


async def flood(
    targets: list[tuple[str, int]],
    count: int,
    concurrency: int,
    hold: float,
    deadline: float,
    kinds: tuple[str, ...] = KINDS,
    sources: tuple[str, ...] = (),
) -> dict[str, object]:
    stats: Counter[str] = Counter()
    slots = asyncio.Semaphore(concurrency)
    started = time.monotonic()
    tasks: set[asyncio.Task[None]] = set()
    active = peak = 0

    async def run(n: int) -> None:
        nonlocal active, peak
        host, port = targets[n % len(targets)]
        source = sources[n // len(targets) % len(sources)] if sources else None
        active += 1
        peak = max(peak, active)
        try:
            await _one(kinds[n % len(kinds)], host, port, hold, stats, source)
        finally:
            active -= 1
            slots.release()

    made = 0
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(deadline) as limit:
            loop = asyncio.get_running_loop()  # SIGTERM ends the flood early, with a summary
            loop.add_signal_handler(signal.SIGTERM, lambda: limit.reschedule(loop.time()))
            for made in range(1, count + 1):
                await slots.acquire()
                task = asyncio.create_task(run(made - 1))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                if made % 1000 == 0:
                    print(f"made {made}", file=sys.stderr, flush=True)
            await asyncio.gather(*tasks)
    for task in list(tasks):
        task.cancel()
    return {
        "made": made,
        "seconds": round(time.monotonic() - started, 2),
        "peak_concurrent": peak,
        **dict(sorted(stats.items())),
    }


def _target(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not ipaddress.ip_address(host).is_loopback:
        raise argparse.ArgumentTypeError(f"{host} is not a loopback address")
    return host, int(port)


def start(argv: list[str], *, made: int) -> subprocess.Popen[str]:
    """This flood in a process of its own (``argv``: its options), returned once it has made
    ``made`` connections (it goes on until its count, deadline or SIGTERM); AssertionError if
    it ends before."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.support.junkflood", *argv],
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        if line.startswith(f"made {made}"):
            return proc
    raise AssertionError(f"the flood ended early: {proc.communicate()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", type=_target, action="append", required=True)
    parser.add_argument(
        "--source", action="append", help="a loopback address to connect from (default: any)"
    )
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=1000)
    parser.add_argument("--hold", type=float, default=8.0)
    parser.add_argument("--deadline", type=float, default=60.0)
    parser.add_argument("--kind", choices=sorted(set(KINDS)), action="append", help="default: all")
    args = parser.parse_args()
    kinds = tuple(args.kind or KINDS)
    sources = tuple(args.source or ())
    for source in sources:
        _target(f"{source}:0")  # loopback only, as the targets
    summary = asyncio.run(
        flood(args.target, args.count, args.concurrency, args.hold, args.deadline, kinds, sources)
    )
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
