"""The configuration's values: what every command runs with, frozen once parsed
(``agent.config.parse``)."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from agent.options import Command
from agent.topology.model import Topology
from agent.topology.podfiles import ResolvConf
from agent.values import field, value

if TYPE_CHECKING:  # pathlib costs every pod's start 1.5 ms; only output files need it
    from pathlib import PurePath

__all__ = [
    "DEFAULT_EXIT_TIMEOUT",
    "DEFAULT_HEALTH_PORT",
    "DEFAULT_PORT",
    "DEFAULT_TIMEOUT",
    "BarrierMode",
    "Config",
    "HostfileFormat",
    "LogFormat",
    "LogLevel",
    "Outputs",
    "Probe",
    "ProbeKind",
    "ReachMode",
    "TrustSource",
]

DEFAULT_PORT = 29300
DEFAULT_HEALTH_PORT = 29301
DEFAULT_TIMEOUT = 600.0
DEFAULT_EXIT_TIMEOUT = 300.0  # torchrun's exit barrier waits as long
DEFAULT_EXIT_GRACE = 10.0  # a stopped workload's time between SIGTERM and SIGKILL


class TrustSource(StrEnum):
    """Whose word counts without a token: only a contact from an address DNS lists for the
    Service (``service``: pod traffic is not NATed, so that is a pod of this Job), or any."""

    SERVICE = "service"
    ANY = "any"


class Driver(StrEnum):
    """The I/O loop: ``selectors`` (no asyncio) where the config needs nothing else, ``anyio``
    for everything; ``auto`` picks (``agent.commands.drivers``)."""

    AUTO = "auto"
    ANYIO = "anyio"
    SELECTORS = "selectors"


class ProbeKind(StrEnum):
    TCP = "tcp"
    ICMP = "icmp"
    DNS = "dns"


@value
class Probe:
    """How a peer counts as reached: ``tcp`` (agent hello), ``tcp:PORT`` (connect), icmp, dns."""

    kind: ProbeKind
    port: int | None = None

    def __str__(self) -> str:
        return f"tcp:{self.port}" if self.port is not None else self.kind.value

    @property
    def says_hello(self) -> bool:
        """Whether a probe says hello to the peer's agent, so that its answer names the pod and
        its instance (``tcp``); ``tcp:PORT``, ``icmp`` and ``dns`` prove only that the address
        answers, and a sweep's addresses cannot be told apart by them."""
        return self.kind is ProbeKind.TCP and self.port is None


class BarrierMode(StrEnum):
    """``all``: every pod waits for every other; ``none``: each only reaches the others."""

    ALL = "all"
    NONE = "none"


class ReachMode(StrEnum):
    """Whom each pod probes: ``all`` every pod; ``sparse`` its neighbours on the graph of
    assigned edges every pod computes alike (``agent.core.graph``, docs/at-scale.md)."""

    ALL = "all"
    SPARSE = "sparse"


class LogFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


class LogLevel(StrEnum):
    """How much a log line matters, least first; ``--log-level`` shows its level and above."""

    DEBUG = "debug"  # what a developer or a curious user follows (DNS catching up)
    INFO = "info"  # what a user reads when all is well (start, reached, released)
    WARNING = "warning"  # worth a look, though the agent goes on
    ERROR = "error"  # this pod fails (exit 2, 3 or 4), or a bug of ours

    def at_least(self, threshold: LogLevel) -> bool:
        """Whether a line of this level is shown when ``threshold`` is the lowest shown."""
        return _LEVEL_ORDER[self] >= _LEVEL_ORDER[threshold]


_LEVEL_ORDER = {level: n for n, level in enumerate(LogLevel)}


class HostfileFormat(StrEnum):
    """How ``--hostfile`` lines look: ``host slots=N``, ``host:N`` or ``host``."""

    OPENMPI = "openmpi"
    MPICH = "mpich"
    PLAIN = "plain"


@value
class Outputs:
    hostfile: PurePath | None = None
    peers_json: PurePath | None = None
    env_file: PurePath | None = None
    slots: int | None = None
    hostfile_format: HostfileFormat = HostfileFormat.OPENMPI


@value(kw_only=True)
class Config:
    command: Command
    topology: Topology
    hostname: str
    probe: Probe = Probe(ProbeKind.TCP)
    port: int = DEFAULT_PORT
    listen: str | None = None
    #: the pod's IP as kubelet's /etc/hosts gives it for this pod's FQDN ("" if it gives none)
    pod_address: str = ""
    barrier: BarrierMode = BarrierMode.ALL
    #: None: by the Job's size (``agent.core.targets``: all up to 256 pods, sparse above)
    reach: ReachMode | None = None
    #: sparse: the edges each pod is given (None: from the Job's size, ``agent.core.graph``)
    reach_degree: int | None = None
    timeout: float | None = DEFAULT_TIMEOUT
    job_uid: str = ""
    token: bytes | None = field(default=None, repr=False)
    trust_source: TrustSource = TrustSource.SERVICE
    outputs: Outputs = Outputs()
    health_port: int = DEFAULT_HEALTH_PORT
    #: run: stay the workload's parent and hold a second barrier when it ends
    exit_barrier: bool = False
    exit_timeout: float | None = DEFAULT_EXIT_TIMEOUT
    #: run --exit-barrier: the pod whose workload's end stops every other pod's (None: none)
    exit_led_by: int | None = None
    #: how long a workload stopped by the leader's end has between SIGTERM and SIGKILL
    exit_grace: float = DEFAULT_EXIT_GRACE
    log_format: LogFormat = LogFormat.TEXT
    #: the lowest level of the lines shown
    log_level: LogLevel = LogLevel.INFO
    dns_servers: tuple[tuple[str, int], ...] = ()
    resolv: ResolvConf = field(default_factory=ResolvConf)
    driver: Driver = Driver.AUTO
    #: not errors, but worth a line in the log (e.g. a token file other users can read)
    warnings: tuple[str, ...] = ()

    @property
    def own_addresses(self) -> frozenset[str]:
        """Where this pod itself is: its --listen address and the pod IP /etc/hosts gives."""
        return frozenset(a for a in (self.listen, self.pod_address) if a)

    @property
    def pod_resolv(self) -> ResolvConf | None:
        """The pod's resolv.conf when the agent resolves through it (no --dns-server)."""
        return None if self.dns_servers else self.resolv
