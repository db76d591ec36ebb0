"""Configuration: flags over variables over what the pod already knows, parsed once, checked once.

The only module that reads the environment. ``load_config`` gathers the raw text (flags, variables,
``/etc/hosts``, ``/etc/resolv.conf``, the token file) through injectable readers; ``build_config``
turns it into a frozen :class:`Config` or raises one :class:`ConfigError` listing every problem.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from agent.errors import ConfigError
from agent.options import OPTIONS, Option
from agent.podfiles import ResolvConf, find_fqdn_entry, parse_resolv_conf
from agent.topology import Topology, is_dns_label, is_dns_subdomain

__all__ = [
    "Config",
    "Outputs",
    "PodFacts",
    "Probe",
    "build_config",
    "load_config",
    "parse_duration",
    "parse_host_port",
]

DEFAULT_PORT = 29300
DEFAULT_HEALTH_PORT = 29301
DEFAULT_TIMEOUT = 600.0
SA_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
_BY_DEST = {o.dest: o for o in OPTIONS}
_T = TypeVar("_T")


@dataclass(frozen=True)
class Probe:
    """How a peer counts as reached: ``tcp`` (agent hello), ``tcp:PORT`` (connect), icmp, dns."""

    kind: str
    port: int | None = None

    def __str__(self) -> str:
        return f"tcp:{self.port}" if self.port is not None else self.kind


@dataclass(frozen=True)
class Outputs:
    hostfile: Path | None = None
    peers_json: Path | None = None
    env_file: Path | None = None
    slots: int | None = None


@dataclass(frozen=True, kw_only=True)
class Config:
    command: str
    topology: Topology
    hostname: str
    probe: Probe = Probe("tcp")
    port: int = DEFAULT_PORT
    listen: str | None = None
    barrier: str = "all"
    timeout: float | None = DEFAULT_TIMEOUT
    job_uid: str = ""
    token: bytes | None = field(default=None, repr=False)
    outputs: Outputs = Outputs()
    health_port: int = DEFAULT_HEALTH_PORT
    log_format: str = "text"
    dns_servers: tuple[tuple[str, int], ...] = ()
    resolv: ResolvConf = field(default_factory=ResolvConf)
    #: not errors, but worth a line in the log (e.g. a token file other users can read)
    warnings: tuple[str, ...] = ()

    @property
    def pod_resolv(self) -> ResolvConf | None:
        """The pod's resolv.conf when the agent resolves through it (no --dns-server)."""
        return None if self.dns_servers else self.resolv


@dataclass(frozen=True)
class PodFacts:
    """What the pod's filesystem and kernel say; read by ``load_config``, given by tests."""

    hostname: str = ""
    hosts: str = ""
    resolv_conf: str = ""
    sa_namespace: str = ""


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """``90s``, ``10m``, ``1h30m``, ``500ms`` or plain seconds; raises ValueError."""
    text = text.strip()
    try:
        seconds = float(text)
    except ValueError:
        pos, seconds = 0, 0.0
        for match in _DURATION.finditer(text):
            if match.start() != pos:
                break
            seconds += float(match.group(1)) * _UNIT[match.group(2)]
            pos = match.end()
        if pos != len(text) or not text:
            raise ValueError(f"not a duration: {text!r} (use e.g. 90s, 10m, 1h)") from None
    if seconds < 0 or seconds != seconds or seconds == float("inf"):
        raise ValueError(f"not a duration: {text!r}")
    return seconds


def _is_number(text: str) -> bool:
    """ASCII digits only: str.isdigit() also passes '²', which int() then refuses."""
    text = text.strip()
    return text.isascii() and text.isdigit()


def parse_port(text: str) -> int:
    if not _is_number(text) or not 1 <= int(text) <= 65535:
        raise ValueError(f"not a port (1-65535): {text!r}")
    return int(text)


def parse_host_port(text: str, default_port: int) -> tuple[str, int]:
    """``HOST``, ``HOST:PORT``, ``[V6]:PORT`` or a bare IPv6 address."""
    host, port = text.strip(), default_port
    if host.startswith("["):
        inner, _, rest = host[1:].partition("]")
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


def parse_probe(text: str) -> Probe:
    kind, _, port = text.strip().partition(":")
    if kind == "tcp" and port:
        return Probe("tcp", parse_port(port))
    if kind in ("tcp", "icmp", "dns") and not port:
        return Probe(kind)
    raise ValueError(f"unknown probe {text!r} (use tcp, tcp:PORT, icmp or dns)")


def _positive_int(text: str) -> int:
    if not _is_number(text) or int(text) < 1:
        raise ValueError(f"not a positive integer: {text!r}")
    return int(text)


class _Problems:
    """Collects every problem, each naming its flag and variable."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, option: Option | None, message: str) -> None:
        self.items.append(f"{option.names}: {message}" if option else message)

    def parse(self, option: Option, text: str | None, parse: Callable[[str], _T]) -> _T | None:
        if text is None:
            return None
        try:
            return parse(text)
        except ValueError as exc:
            self.add(option, str(exc))
            return None


def _file_mode(path: str) -> int | None:
    try:
        return os.stat(path).st_mode
    except (OSError, ValueError):
        return None


def build_config(
    command: str,
    values: Mapping[str, str],
    facts: PodFacts,
    *,
    read_token_file: Callable[[str], bytes] = lambda p: Path(p).read_bytes(),
    token_file_mode: Callable[[str], int | None] = _file_mode,
) -> Config:
    """Validate ``values`` (dest → text, flags already merged over variables) into a Config."""
    p = _Problems()
    opt = _BY_DEST

    def get(dest: str) -> str | None:
        text = values.get(dest)
        return None if text is None or text == "" else text

    peers = p.parse(opt["peers"], get("peers"), _positive_int)
    if get("peers") is None:
        p.add(opt["peers"], "required: the number of pods (the Job's completions)")
    index_text = get("index")
    index: int | None = None
    if index_text is None:
        p.add(opt["index"], "required: Kubernetes sets it in an Indexed Job; else pass --index")
    elif not _is_number(index_text):
        p.add(opt["index"], f"not a non-negative integer: {index_text!r}")
    else:
        index = int(index_text)
        if peers is not None and index >= peers:
            p.add(opt["index"], f"index {index} is not below the peer count {peers}")

    hostname = (get("hostname") or facts.hostname).strip().lower()
    entry = find_fqdn_entry(facts.hosts, hostname) if hostname else None
    job = get("job_name")
    if job is None and index is not None:
        suffix = f"-{index}"
        if hostname.endswith(suffix) and len(hostname) > len(suffix):
            job = hostname[: -len(suffix)]
        else:
            p.add(
                opt["job_name"],
                f"cannot derive the job name: hostname {hostname!r} does not end in {suffix!r}",
            )
    service = get("service") or (entry.subdomain if entry else None)
    if service is None:
        p.add(
            opt["service"],
            "cannot derive the service: no '<hostname>.<subdomain>.<ns>.svc.<zone>' line in "
            "/etc/hosts (set spec.subdomain to the headless Service's name)",
        )
    namespace = (
        get("namespace")
        or (entry.namespace if entry else None)
        or (facts.sa_namespace.strip() or None)
    )
    if namespace is None:
        p.add(opt["namespace"], "cannot derive the namespace from /etc/hosts; set it")
    zone = (get("cluster_domain") or (entry.zone if entry else "cluster.local")).rstrip(".")

    for dest, name in (("service", service), ("namespace", namespace)):
        if name is not None and not is_dns_label(name):
            p.add(opt[dest], f"{name!r} is not a DNS-1123 label")
    if not is_dns_subdomain(zone):
        p.add(opt["cluster_domain"], f"{zone!r} is not a DNS domain")
    if job is not None and peers is not None:
        last = f"{job}-{peers - 1}"
        if not is_dns_label(last):
            why = "is over 63 characters" if len(last) > 63 else "is not a DNS-1123 label"
            p.add(opt["job_name"], f"peer hostname {last!r} {why}")

    probe = p.parse(opt["probe"], get("probe") or "tcp", parse_probe)
    port = p.parse(opt["port"], get("port") or str(DEFAULT_PORT), parse_port)
    health = p.parse(opt["health_port"], get("health_port") or str(DEFAULT_HEALTH_PORT), parse_port)
    if command == "sidecar" and health is not None and health == port:
        p.add(opt["health_port"], f"must differ from --port ({port})")
    listen = get("listen")
    if listen is not None:
        p.parse(opt["listen"], listen, ipaddress.ip_address)
    barrier = get("barrier") or "all"
    if barrier not in ("all", "none"):
        p.add(opt["barrier"], f"unknown barrier {barrier!r} (use all or none)")
    timeout = p.parse(opt["timeout"], get("timeout") or "10m", parse_duration)
    log_format = get("log_format") or "text"
    if log_format not in ("text", "json"):
        p.add(opt["log_format"], f"unknown log format {log_format!r} (use text or json)")
    dns_servers: tuple[tuple[str, int], ...] = ()
    if (server := get("dns_server")) is not None:
        parsed = p.parse(opt["dns_server"], server, lambda t: parse_host_port(t, 53))
        dns_servers = (parsed,) if parsed else ()
    slots = p.parse(opt["slots"], get("slots"), _positive_int)

    token: bytes | None = None
    warnings: list[str] = []
    if get("token") is not None and get("token_file") is not None:
        p.add(opt["token"], "give either --token or --token-file, not both")
    elif (token_text := get("token")) is not None:
        # os.fsencode gives back the bytes of a variable that is not UTF-8 (a Secret of random
        # bytes), which Python decoded with surrogates; .encode() raised on them.
        token = os.fsencode(token_text)
    elif (token_path := get("token_file")) is not None:
        try:
            token = read_token_file(token_path).strip()
        except OSError as exc:
            p.add(opt["token_file"], f"cannot read {token_path!r}: {exc.strerror or exc}")
        else:
            if not token:
                p.add(opt["token_file"], f"{token_path!r} is empty")
            mode = token_file_mode(token_path)
            if mode is not None and mode & stat.S_IROTH:
                warnings.append(
                    f"{opt['token_file'].names}: {token_path!r} is readable by every user in the "
                    f"container (mode {stat.S_IMODE(mode):04o}); mount the Secret with "
                    "defaultMode: 0400 (0440 with fsGroup)"
                )

    outputs = {}
    for dest in ("hostfile", "peers_json", "env_file"):
        if (path_text := get(dest)) is not None:
            path = Path(path_text)
            if not path.parent.is_dir():
                p.add(opt[dest], f"directory {str(path.parent)!r} does not exist")
            outputs[dest] = path
    unknown = [d for d in values if d not in _BY_DEST]
    if unknown:
        p.add(None, f"unknown options: {', '.join(sorted(unknown))}")

    if p.items:
        raise ConfigError(p.items)
    assert peers is not None and index is not None and job and service and namespace
    assert probe is not None and port is not None and health is not None
    return Config(
        command=command,
        topology=Topology(
            job=job, service=service, namespace=namespace, zone=zone, peers=peers, index=index
        ),
        hostname=hostname,
        probe=probe,
        port=port,
        listen=listen,
        barrier=barrier,
        timeout=timeout or None,  # 0 means no limit
        job_uid=get("job_uid") or "",
        token=token,
        outputs=Outputs(slots=slots, **outputs),
        health_port=health,
        log_format=log_format,
        dns_servers=dns_servers,
        resolv=parse_resolv_conf(facts.resolv_conf),
        warnings=tuple(warnings),
    )


def _read(path: str) -> str:
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return ""


def read_pod_facts() -> PodFacts:
    return PodFacts(
        hostname=socket.gethostname(),
        hosts=_read("/etc/hosts"),
        resolv_conf=_read("/etc/resolv.conf"),
        sa_namespace=_read(SA_NAMESPACE),
    )


def load_config(
    command: str,
    flags: Mapping[str, str | None],
    *,
    environ: Mapping[str, str] = os.environ,
    facts: PodFacts | None = None,
) -> Config:
    """Merge flags over variables, read the pod's files and validate everything at once."""
    values = {o.dest: environ.get(o.env, "") for o in OPTIONS}
    values.update({dest: text for dest, text in flags.items() if text is not None})
    return build_config(command, values, facts if facts is not None else read_pod_facts())
