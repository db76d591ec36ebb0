"""Reaching peers by name or address, written once for both drivers (``agent.io.contacts`` for
anyio, ``agent.io.sync.peers`` for selectors).

An attempt resolves a peer's name (unless the core gives the addresses) and probes its
addresses until one settles it (``agent.core.answers.NameAttempt``); a sweep asks the Service's
name; a lookup asks one pod's name again; an address of a sweep is probed alone. Each posts what
happened, the core's input, and decides nothing. A driver gives how one address is probed
(``_probe``) and how an event is posted (``_tell``, ``_tell_now``); it imports no event loop.
"""

from __future__ import annotations

import collections
from collections.abc import Awaitable, Callable

from agent.config.model import Config, Probe, ProbeKind
from agent.core.answers import NameAttempt
from agent.core.inputs import AddressProbed, Input, LookedUp, ProbeResult, Resolution, Swept

__all__ = ["HELLO", "Reaching", "asked", "plain"]

HELLO = Probe(ProbeKind.TCP)  # the agent's hello, on its port


def plain(address: str) -> str:
    """A dual-stack listener sees IPv4 peers as ``::ffff:a.b.c.d`` (as the kernel's address is
    written by ``getpeername``); DNS lists ``a.b.c.d``. A string test, not ``ipaddress``: it
    runs for every contact."""
    return address[7:] if address.startswith("::ffff:") and "." in address else address


async def asked(
    config: Config,
    resolve: Callable[[str], Awaitable[Resolution]],
    counts: collections.Counter[str],
    index: int,
    addresses: tuple[str, ...] = (),
) -> Resolution:
    """Where to reach peer ``index``: ``addresses`` when the core gives them (they refused a
    moment ago), else its name resolved afresh (counted among the DNS lookups)."""
    if addresses:
        return Resolution(addresses)
    counts["dns_lookups"] += 1
    return await resolve(config.topology.fqdn(index))


class Reaching:
    """The attempts, sweeps, lookups and address probes of one barrier instance; a driver's
    subclass sets ``_tell`` and ``_tell_now`` and gives ``_probe``."""

    config: Config
    resolve: Callable[[str], Awaitable[Resolution]]
    #: what this agent did, for the release line: DNS lookups, probes, sessions, messages
    counts: collections.Counter[str]
    #: post an event to the driver's queue (may yield a turn), or post it at once
    _tell: Callable[[Input], Awaitable[None]]
    _tell_now: Callable[[Input], None]

    async def _probe(self, address: str, target: int | None, hello: bool) -> ProbeResult:
        """Probe ``address`` (as peer ``target``, if known); ``hello``: with the agent's hello
        on its port, whatever ``--probe`` is."""
        raise NotImplementedError

    async def _probed(self, address: str, target: int | None, hello: bool = False) -> ProbeResult:
        self.counts["probes"] += 1
        return await self._probe(address, target, hello)

    async def _resolve(self, name: str) -> Resolution:
        self.counts["dns_lookups"] += 1
        return await self.resolve(name)

    async def attempt(
        self, index: int, instance: str = "", addresses: tuple[str, ...] = (), hello: bool = False
    ) -> None:
        """Resolve peer ``index`` afresh (unless the core gives the ``addresses`` to try) and
        probe its addresses until one settles the attempt (``agent.core.answers.NameAttempt``
        says which); ``hello``: with the agent's hello on its port, whatever ``--probe`` is."""
        resolution = await asked(self.config, self.resolve, self.counts, index, addresses)
        attempt = NameAttempt(index, instance, resolution)
        for address in resolution.addresses:
            if attempt.probed(address, await self._probed(address, index, hello)):
                break
        await self._tell(attempt.outcome())

    async def sweep(self) -> None:
        """One bulk round: every address the Service publishes, in one query."""
        service = self.config.topology.service_fqdn
        assert service is not None  # bulk discovery (the only sweeper) needs the Service
        await self._tell(Swept(await self._resolve(service)))

    async def lookup(self, index: int) -> None:
        """Peer ``index``'s name asked again, probing nothing: what the core re-checks a
        contact that claims to be that pod by."""
        await self._tell(LookedUp(index, await self._resolve(self.config.topology.fqdn(index))))

    async def probe_address(self, address: str) -> None:
        """One address of a bulk round (run by the driver's ProbeQueue, which bounds them)."""
        result = await self._probed(address, None)
        # The queue is unbounded: no need to yield once more per probe to post its result.
        self._tell_now(AddressProbed(address, result))
