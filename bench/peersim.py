"""Thousands of lightweight peers in one asyncio process, speaking the agent's real protocol.

Run by the sweep and coordinator cases as ``python -m bench.peersim SPEC_JSON``, in a process of
its own so that its CPU does not share the launching process's GIL. Each peer listens on its own
127.x address (the agent probes addresses, and the hello says who answers) and answers hellos
with ``agent.io.channel.server_handshake``. In ``members`` mode each peer also opens its barrier
session to the coordinator from its own address (so the coordinator's push wake-up probes the
right address), waits for ``go`` on stdin, sends ``Arrive`` and awaits ``Release``.

Progress goes to stdout as JSON lines, with ``time.monotonic()`` stamps comparable across
processes.
"""

from __future__ import annotations

import contextlib
import json
import socket
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.abc

from agent.errors import WireError
from agent.io.channel import Channel, HandshakeFailed, client_handshake, server_handshake
from agent.protocol.wire import Ack, Arrive, Identity, Release, Role

__all__ = ["address_of", "main"]

SESSION_DEADLINE = 90.0  # seconds a member keeps trying to open its session
CONNECT_AT_ONCE = 256  # beyond the coordinator's accept backlog, SYNs are dropped and wait 1 s


def address_of(index: int, net: int) -> str:
    """Peer ``index``'s loopback address in the 127.<net>.0.0/14-ish block the case owns."""
    return f"127.{net + (index >> 16)}.{(index >> 8) & 255}.{index & 255}"


def _emit(record: dict[str, Any]) -> None:
    print(json.dumps(record), flush=True)


@dataclass
class Sim:
    job: str
    peers: int
    port: int
    net: int
    indices: list[int]
    coordinator: str | None
    index_of: dict[str, int] = field(default_factory=dict)
    answered: int = 0
    connected: int = 0
    failed: int = 0
    last_arrive: float = 0.0
    releases: list[float] = field(default_factory=list)

    def identity(self, index: int) -> Identity:
        return Identity(self.job, "", index, self.peers, self.port)

    async def answer(self, stream: anyio.abc.SocketStream) -> None:
        """One incoming probe or session: answer the hello as the peer owning that address."""
        async with stream:
            local = stream.extra(anyio.abc.SocketAttribute.local_address)[0]
            index = self.index_of.get(str(local))
            if index is None:
                return
            with contextlib.suppress(WireError, HandshakeFailed):
                await server_handshake(
                    Channel(stream), me=self.identity(index), token=None, released=False
                )
                self.answered += 1

    async def listen(self) -> list[anyio.abc.SocketListener]:
        listeners = []
        for index in self.indices:
            address = address_of(index, self.net)
            self.index_of[address] = index
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((address, self.port))
            except OSError as exc:
                raise OSError(f"{address}:{self.port}: {exc}") from None
            sock.listen(64)
            sock.setblocking(False)
            listeners.append(await anyio.abc.SocketListener.from_socket(sock))
        return listeners

    def settled(self) -> None:
        """Every member has its session or gave up: the bench may say go."""
        if self.connected + self.failed == len(self.indices):
            _emit({"connected": time.monotonic(), "sessions": self.connected})

    async def session(
        self, index: int, slots: anyio.Semaphore
    ) -> tuple[anyio.abc.SocketStream, Channel]:
        """Connect and say hello as member ``index``; retried as a real member retries (a busy
        coordinator may take longer than the handshake's 5 s deadline to answer)."""
        deadline = time.monotonic() + SESSION_DEADLINE
        while True:
            async with slots:
                try:
                    return await self._open(index)
                except (OSError, WireError, HandshakeFailed):
                    if time.monotonic() > deadline:
                        raise
            await anyio.sleep(0.5)

    async def _open(self, index: int) -> tuple[anyio.abc.SocketStream, Channel]:
        assert self.coordinator is not None
        stream = await anyio.connect_tcp(
            self.coordinator, self.port, local_host=address_of(index, self.net)
        )
        channel = Channel(stream)
        try:
            await client_handshake(
                channel, me=self.identity(index), role=Role.MEMBER, token=None, expected_index=0
            )
        except BaseException:
            await stream.aclose()
            raise
        return stream, channel

    async def member(self, index: int, gate: anyio.Event, slots: anyio.Semaphore) -> None:
        """One member's session: connect, hello, arrive on ``gate``, note when Release came."""
        assert self.coordinator is not None
        stream, channel = await self.session(index, slots)
        self.connected += 1
        self.settled()
        async with stream:
            await gate.wait()
            await channel.send(Arrive())
            self.last_arrive = max(self.last_arrive, time.monotonic())
            message = await channel.receive(None)
            if isinstance(message, Release):
                self.releases.append(time.monotonic())
                with contextlib.suppress(OSError, anyio.BrokenResourceError):
                    await channel.send(Ack())


async def _run(spec: dict[str, Any]) -> None:
    sim = Sim(
        job=spec["job"],
        peers=spec["peers"],
        port=spec["port"],
        net=spec["net"],
        indices=list(range(spec["first"], spec["last"] + 1)),
        coordinator=spec.get("coordinator"),
    )
    listeners = await sim.listen()
    async with anyio.create_task_group() as tg:
        for listener in listeners:
            tg.start_soon(listener.serve, sim.answer)
        _emit({"ready": time.monotonic(), "listeners": len(listeners)})
        if sim.coordinator is not None:
            await _members(sim, tg)
        else:  # peers only: serve until told to stop
            await anyio.to_thread.run_sync(sys.stdin.readline)
            _emit({"answered": sim.answered})
        tg.cancel_scope.cancel()


async def _members(sim: Sim, tg: anyio.abc.TaskGroup) -> None:
    gate = anyio.Event()
    slots = anyio.Semaphore(CONNECT_AT_ONCE)
    done = anyio.Event()
    left = len(sim.indices)
    failures: list[str] = []

    async def one(index: int) -> None:
        nonlocal left
        try:
            await sim.member(index, gate, slots)
        except (OSError, WireError, HandshakeFailed, anyio.BrokenResourceError) as exc:
            failures.append(f"{index}: {exc}")
            if not gate.is_set():
                sim.failed += 1
                sim.settled()
        left -= 1
        if left == 0:
            done.set()

    for index in sim.indices:
        tg.start_soon(one, index)
    # Arrivals wait for the bench's go (after the coordinator has reached all its targets).
    await anyio.to_thread.run_sync(sys.stdin.readline)
    gate.set()
    with anyio.move_on_after(60):
        await done.wait()
    _emit(
        {
            "connected_count": sim.connected,
            "last_arrive": sim.last_arrive,
            "first_release": min(sim.releases, default=None),
            "last_release": max(sim.releases, default=None),
            "released": len(sim.releases),
            "failures": failures[:5],
            "failed": len(failures),
            "answered": sim.answered,
        }
    )


def main() -> None:
    anyio.run(_run, json.loads(sys.argv[1]))


if __name__ == "__main__":
    main()
