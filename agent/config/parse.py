"""Configuration: flags over variables over what the pod already knows, parsed once, checked once.

Pure: ``agent.io.podfacts`` reads the environment and the pod's files into a
:class:`~agent.topology.podfiles.PodFacts`; ``load_config`` merges flags over its variables and
``build_config`` turns that into a frozen :class:`Config`, or raises one :class:`ConfigError`
listing every problem, each naming its flag and variable. Which controller made the pod and who
its peers are is :mod:`agent.topology.derive`'s part.
"""

from __future__ import annotations

import ipaddress
import math
import re
import stat
from collections.abc import Callable, Mapping
from enum import Enum
from typing import TYPE_CHECKING, TypeVar

from agent.config.model import (
    DEFAULT_HEALTH_PORT,
    DEFAULT_PORT,
    BarrierMode,
    Config,
    Driver,
    HostfileFormat,
    LogFormat,
    LogLevel,
    Outputs,
    Probe,
    ProbeKind,
    TrustSource,
)
from agent.config.reach import parse_reach
from agent.errors import ConfigError
from agent.options import OPTIONS, Command
from agent.problems import Problems
from agent.protocol.wire import MAX_UID
from agent.topology.derive import derive_topology
from agent.topology.inputs import is_number
from agent.topology.model import Topology
from agent.topology.podfiles import PodFacts, find_fqdn_entry, parse_resolv_conf
from agent.topology.sources import Origin

if TYPE_CHECKING:
    from pathlib import PurePath

__all__ = [
    "DURATION_FORMS",
    "build_config",
    "load_config",
    "parse_duration",
    "parse_host_port",
    "parse_port",
]

_BY_DEST = {o.dest: o for o in OPTIONS}
_E = TypeVar("_E", bound=Enum)


_AMOUNT = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|h|m|s|)", re.ASCII)  # "ms" before "m"
_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}  # largest first: the order they go in
_BARE = {"": "s", "h": "m", "m": "s"}  # a bare amount alone, or after h or m: the unit it is in
#: what ``parse_duration`` accepts, for its errors and the CLI's help
DURATION_FORMS = "90 or 90s, 1.5h, 10m, 1h30m or 1h30, 2m30s or 2m30, 500ms"


#: the longest duration a socket's timeout and the event loop's clock take, with room to spare
#: (CPython's clock holds about 292 years in nanoseconds): about 274 years
MAX_DURATION_HOURS = 2_400_000


def parse_duration(text: str, zero: str = "no limit") -> float:
    """Seconds, from a bare number of seconds (``90``, ``1.5``) or amounts with units largest
    first, each unit at most once (``1h30m``, ``2m30s``, ``1.5h``, ``500ms``). A bare amount
    after ``h`` or ``m`` is in the next unit down: ``1h30`` is 1h30m, as it is said aloud.
    No signs, spaces or exponents. Raises ValueError naming the forms it accepts and what 0
    means (``zero``): a user fixing the value may well reach for 0, and for --exit-grace it is
    SIGKILL at once, the opposite of a timeout's "no limit"."""
    stripped = text.strip()
    if stripped.startswith("-"):
        raise ValueError(f"{text!r} is negative: give 0 or more (0 means {zero})")
    amounts = _amounts(stripped)
    if amounts is None:
        raise ValueError(f"not a duration: {text!r} (use {DURATION_FORMS})")
    seconds = sum(amount * _UNITS[unit] for amount, unit in amounts)
    if not math.isfinite(seconds) or seconds > MAX_DURATION_HOURS * 3600:
        raise ValueError(f"{text!r} is too long: at most {MAX_DURATION_HOURS}h (0 means {zero})")
    return seconds


def _parse_grace(text: str) -> float:
    """--exit-grace: 0 is no grace at all, not the timeouts' "no limit"."""
    return parse_duration(text, zero="SIGKILL right after SIGTERM")


def _amounts(text: str) -> list[tuple[float, str]] | None:
    """``text`` as (amount, unit) pairs, largest unit first; None if it is not a duration."""
    amounts: list[tuple[float, str]] = []
    pos = 0
    while pos < len(text):
        match = _AMOUNT.match(text, pos)
        if match is None:
            return None
        number, unit = match.groups()
        if not unit:  # its unit follows from the one before it
            unit = _BARE.get(amounts[-1][1] if amounts else "", "")
            if not unit or match.end() != len(text):
                return None
        if amounts and list(_UNITS).index(unit) <= list(_UNITS).index(amounts[-1][1]):
            return None  # a unit again, or a larger one after a smaller: 30m1h, 1m1m
        amounts.append((float(number), unit))
        pos = match.end()
    return amounts or None


def parse_port(text: str) -> int:
    if not is_number(text) or not 1 <= int(text) <= 65535:
        raise ValueError(f"not a port (1-65535): {text!r}")
    return int(text)


def parse_host_port(text: str, default_port: int) -> tuple[str, int]:
    """``HOST``, ``HOST:PORT``, ``[V6]:PORT`` or a bare IPv6 address."""
    host, port = text.strip(), default_port
    if host.startswith("["):
        inner, closed, rest = host[1:].partition("]")
        if not closed:
            raise ValueError(f"not HOST[:PORT]: {text!r} (no closing ']')")
        host = inner
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"not HOST[:PORT]: {text!r}")
            port = parse_port(rest[1:])
    elif host.count(":") == 1:
        host, _, port_text = host.partition(":")
        port = parse_port(port_text)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"not an IP address: {host!r} (in {text!r})") from None
    return host, port


def parse_switch(text: str) -> bool:
    value = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
    if text.lower() not in value:
        raise ValueError(f"not true or false: {text!r}")
    return value[text.lower()]


def _one_of(kind: type[_E], what: str) -> Callable[[str], _E]:
    """A parser of one of ``kind``'s values, whose error names them all in their order."""
    *most, last = [str(member.value) for member in kind]
    known = f"{', '.join(most)} or {last}"

    def parse(text: str) -> _E:
        try:
            return kind(text)
        except ValueError:
            raise ValueError(f"unknown {what} {text!r} (use {known})") from None

    return parse


def parse_probe(text: str) -> Probe:
    name, _, port = text.strip().partition(":")
    kind = next((k for k in ProbeKind if k.value == name), None)
    if kind is ProbeKind.TCP and port:
        return Probe(kind, parse_port(port))
    if kind is not None and not port:
        return Probe(kind)
    raise ValueError(f"unknown probe {text!r} (use tcp, tcp:PORT, icmp or dns)")


_barrier_mode = _one_of(BarrierMode, "barrier")
_log_format = _one_of(LogFormat, "log format")
_log_level = _one_of(LogLevel, "log level")
_driver = _one_of(Driver, "driver")


def _positive_int(text: str) -> int:
    if not is_number(text) or int(text) < 1:
        raise ValueError(f"not a positive integer: {text!r}")
    return int(text)


def _job_uid(text: str) -> str:
    """What every hello carries: printable, at most ``wire.MAX_UID`` characters (the peers'
    decoder refuses anything else, so a pod with such a uid could reach no one, itself
    included)."""
    if len(text) > MAX_UID:
        raise ValueError(f"{len(text)} characters: at most {MAX_UID} (a Job's uid has 36)")
    if not text.isprintable():
        raise ValueError(f"{text!r} has characters that cannot be printed")
    return text


def build_config(
    command: str | Command,
    values: Mapping[str, str],
    facts: PodFacts,
    given: Mapping[str, Origin] | None = None,
) -> Config:
    """Validate ``values`` (dest → text, flags already merged over variables) into a Config;
    ``given``: whether each value came as a flag or a variable (a flag, if not said)."""
    command = Command(command)
    p = Problems()
    opt = _BY_DEST

    def get(dest: str) -> str | None:
        text = values.get(dest)
        return None if text is None or text == "" else text

    hostname = (get("hostname") or facts.hostname).strip().lower()
    entry = find_fqdn_entry(facts.hosts, hostname) if hostname else None
    topology = derive_topology(get, facts, hostname=hostname, entry=entry, p=p, given=given)

    probe = p.parse(opt["probe"], get("probe") or ProbeKind.TCP, parse_probe)
    port = p.parse(opt["port"], get("port") or str(DEFAULT_PORT), parse_port)
    health = p.parse(opt["health_port"], get("health_port") or str(DEFAULT_HEALTH_PORT), parse_port)
    if command is Command.SIDECAR and health is not None and health == port:
        p.add(opt["health_port"], f"must differ from --port ({port})")
    listen = get("listen")
    if listen is not None:
        p.parse(opt["listen"], listen, ipaddress.ip_address)
    barrier = p.parse(opt["barrier"], get("barrier") or BarrierMode.ALL, _barrier_mode)
    if topology is not None and topology.index is None:
        # A launcher waiting for workers that are not agents: it reaches them, no more.
        barrier = _one_sided(p, topology, probe, get("barrier"))
    reach, reach_degree = parse_reach(p, get("reach"), get("reach_degree"))
    timeout = p.parse(opt["timeout"], get("timeout") or "10m", parse_duration)
    exit_barrier = p.parse(opt["exit_barrier"], get("exit_barrier") or "false", parse_switch)
    exit_timeout = p.parse(opt["exit_timeout"], get("exit_timeout") or "5m", parse_duration)
    if exit_barrier and barrier is BarrierMode.NONE:
        p.add(opt["exit_barrier"], "needs a barrier (--barrier all): every pod leaves together")
    exit_led_by = _exit_led_by(p, get("exit_led_by"), topology, probe, bool(exit_barrier))
    exit_grace = p.parse(opt["exit_grace"], get("exit_grace") or "10s", _parse_grace)
    log_format = p.parse(opt["log_format"], get("log_format") or LogFormat.TEXT, _log_format)
    log_level = p.parse(opt["log_level"], get("log_level") or LogLevel.INFO, _log_level)
    driver = p.parse(opt["driver"], get("driver") or Driver.AUTO, _driver)
    dns_servers: tuple[tuple[str, int], ...] = ()
    if (server := get("dns_server")) is not None:
        parsed = p.parse(opt["dns_server"], server, lambda t: parse_host_port(t, 53))
        dns_servers = (parsed,) if parsed else ()
    slots = p.parse(opt["slots"], get("slots"), _positive_int)
    hostfile_format = p.parse(
        opt["hostfile_format"], get("hostfile_format") or "openmpi", _hostfile_format
    )
    job_uid = p.parse(opt["job_uid"], get("job_uid") or "", _job_uid)
    token, warnings = _token(p, get, facts)
    trust_source = p.parse(opt["trust_source"], get("trust_source") or "service", _trust_source)

    outputs: dict[str, PurePath] = {}
    for dest in ("hostfile", "peers_json", "env_file"):
        if (path_text := get(dest)) is not None:
            from pathlib import PurePath  # with output files only: see agent.config.model

            path = PurePath(path_text)
            if str(path.parent) in facts.missing_dirs:
                p.add(opt[dest], f"directory {str(path.parent)!r} does not exist")
            outputs[dest] = path
    unknown = [d for d in values if d not in _BY_DEST]
    if unknown:
        p.add(None, f"unknown options: {', '.join(sorted(unknown))}")

    if p.items:
        raise ConfigError(p.items)
    assert topology is not None and probe is not None and port is not None
    assert health is not None and hostfile_format is not None
    assert barrier is not None and log_format is not None and log_level is not None
    return Config(
        command=command,
        topology=topology,
        hostname=hostname,
        probe=probe,
        port=port,
        listen=listen,
        pod_address=entry.address if entry is not None else "",
        barrier=barrier,
        reach=reach,
        reach_degree=reach_degree,
        timeout=timeout or None,  # 0 means no limit
        job_uid=job_uid or "",
        token=token,
        trust_source=trust_source or TrustSource.SERVICE,
        outputs=Outputs(slots=slots, hostfile_format=hostfile_format, **outputs),
        health_port=health,
        exit_barrier=bool(exit_barrier),
        exit_timeout=exit_timeout or None,  # 0 means no limit
        exit_led_by=exit_led_by,
        exit_grace=exit_grace or 0.0,  # 0: SIGKILL right after SIGTERM
        log_format=log_format,
        log_level=log_level,
        dns_servers=dns_servers,
        resolv=parse_resolv_conf(facts.resolv_conf),
        driver=driver or Driver.AUTO,
        warnings=tuple(warnings),
    )


_trust_source = _one_of(TrustSource, "value")
_hostfile_format = _one_of(HostfileFormat, "format")


def _exit_led_by(
    p: Problems,
    text: str | None,
    topology: Topology | None,
    probe: Probe | None,
    exit_barrier: bool,
) -> int | None:
    """The leading pod's index; a problem unless it is one of the peers, with the exit barrier
    and the tcp probe (the leader's hello is what stops the others)."""
    if text is None:
        return None
    option = _BY_DEST["exit_led_by"]
    if not is_number(text):
        p.add(option, f"not a pod index: {text!r} (a number from 0)")
        return None
    if topology is not None and int(text) >= topology.peers:
        last = topology.peers - 1
        p.add(option, f"no pod has index {text}: there are {topology.peers} (0 to {last})")
    if not exit_barrier:
        p.add(option, "needs --exit-barrier: the leader's end reaches the others through it")
    if probe is not None and probe != Probe(ProbeKind.TCP):
        p.add(option, f"needs --probe tcp (not {probe}): the leader's hello stops the others")
    return int(text)


def _one_sided(
    p: Problems, topology: Topology, probe: Probe | None, barrier: str | None
) -> BarrierMode:
    """This pod is not among the peers: no hello (it has no index) and no barrier of its own."""
    where = f"this pod ({topology.kind}) is not one of the {topology.peers} peers"
    if probe is not None and probe.kind is ProbeKind.TCP and probe.port is None:
        p.add(
            _BY_DEST["probe"],
            f"{where}, so it cannot say hello on the agent's port: use tcp:PORT (tcp:22 for "
            "sshd), icmp or dns",
        )
    if barrier == BarrierMode.ALL:
        p.add(_BY_DEST["barrier"], f"{where}; a barrier needs every waiting pod listed: use none")
    return BarrierMode.NONE


def _token(
    p: Problems, get: Callable[[str], str | None], facts: PodFacts
) -> tuple[bytes | None, list[str]]:
    opt = _BY_DEST
    warnings: list[str] = []
    if get("token") is not None and get("token_file") is not None:
        p.add(opt["token"], "give either --token or --token-file, not both")
        return None, warnings
    if (token_text := get("token")) is not None:
        # surrogateescape gives back the bytes of a variable that is not UTF-8 (a Secret of
        # random bytes), which Python decoded with surrogates; a plain .encode() raised on them.
        return token_text.encode("utf-8", "surrogateescape"), warnings
    if (token_path := get("token_file")) is None:
        return None, warnings
    read = facts.file(token_path)
    if read.data is None:
        p.add(opt["token_file"], f"cannot read {token_path!r}: {read.error}")
        return None, warnings
    token = read.data.strip()
    if not token:
        p.add(opt["token_file"], f"{token_path!r} is empty")
    if read.mode is not None and read.mode & stat.S_IROTH:
        warnings.append(
            f"{opt['token_file'].names}: {token_path!r} is readable by every user in the "
            f"container (mode {stat.S_IMODE(read.mode):04o}); mount the Secret with "
            "defaultMode: 0400 (0440 with fsGroup)"
        )
    return token, warnings


def load_config(command: str | Command, flags: Mapping[str, str | None], facts: PodFacts) -> Config:
    """Merge flags over the variables in ``facts`` and validate everything at once. A variable
    of an option this command does not take is ignored, not judged: a pod's containers often
    share one environment, and ``wait`` cannot be told to fix ``PEER_AGENT_EXIT_LED_BY`` with
    a flag (``--exit-barrier``) it refuses. Its flag stays refused, by argparse."""
    command = Command(command)
    values = {o.dest: facts.environ.get(o.env, "") for o in OPTIONS if command in o.commands}
    values.update({dest: text for dest, text in flags.items() if text is not None})
    given = {
        dest: Origin.FLAG if flags.get(dest) else Origin.VARIABLE
        for dest, text in values.items()
        if text
    }
    return build_config(command, values, facts, given)
