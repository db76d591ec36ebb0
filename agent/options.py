"""The option table: every flag, its variable and its help, in one place (docs/configuration.md).

The CLI builds its parser from it and ``config`` reads the same table, so a flag and its
variable cannot drift apart.
"""

from __future__ import annotations

from enum import StrEnum

from agent.values import value

__all__ = ["FILE_INPUTS", "FILE_OUTPUTS", "OPTIONS", "SWITCHES", "Command", "Option"]


class Command(StrEnum):
    """The commands that take these options and build a
    :class:`~agent.config.model.Config` (``lint`` and ``barrier`` take their own arguments)."""

    WAIT = "wait"
    RUN = "run"
    SIDECAR = "sidecar"
    DOCTOR = "doctor"


@value
class Option:
    dest: str
    flag: str
    env: str
    help: str
    commands: frozenset[Command] = frozenset(Command)

    @property
    def names(self) -> str:
        """How an error message names it: ``--peers / PEER_AGENT_PEERS``."""
        return f"{self.flag} / {self.env}"


_WAITING = frozenset({Command.WAIT, Command.RUN, Command.SIDECAR})

OPTIONS: tuple[Option, ...] = (
    Option(
        "topology",
        "--topology",
        "PEER_AGENT_TOPOLOGY",
        "auto (default), indexed-job, jobset, lws, trainer, training-operator or hostfile",
    ),
    Option("peers", "--peers", "PEER_AGENT_PEERS", "number of pods (the Job's completions)"),
    Option("index", "--index", "JOB_COMPLETION_INDEX", "this pod's index (Kubernetes sets it)"),
    Option("job_name", "--job-name", "PEER_AGENT_JOB_NAME", "default: hostname without -<index>"),
    Option("service", "--service", "PEER_AGENT_SERVICE", "default: subdomain from /etc/hosts"),
    Option("namespace", "--namespace", "PEER_AGENT_NAMESPACE", "default: from /etc/hosts"),
    Option(
        "cluster_domain",
        "--cluster-domain",
        "PEER_AGENT_CLUSTER_DOMAIN",
        "default: from /etc/hosts, else cluster.local",
    ),
    Option(
        "replicated_jobs",
        "--replicated-jobs",
        "PEER_AGENT_REPLICATED_JOBS",
        "JobSet: NAME=REPLICASxPODS,... the barrier spans, in spec order",
    ),
    Option(
        "peers_from",
        "--peers-from",
        "PEER_AGENT_PEERS_FROM",
        "hostfile listing the peers (MPI, Volcano); one host a line",
    ),
    Option("probe", "--probe", "PEER_AGENT_PROBE", "tcp (default), tcp:PORT, icmp or dns"),
    Option("port", "--port", "PEER_AGENT_PORT", "the agent's own port (default 29300)"),
    Option("listen", "--listen", "PEER_AGENT_LISTEN", "address to listen on (default: all)"),
    Option("barrier", "--barrier", "PEER_AGENT_BARRIER", "all (default) or none", _WAITING),
    Option(
        "reach",
        "--reach",
        "PEER_AGENT_REACH",
        "all (every pod probes every pod) or sparse (a few neighbours each); default: all up "
        "to 256 pods, sparse above",
    ),
    Option(
        "reach_degree",
        "--reach-degree",
        "PEER_AGENT_REACH_DEGREE",
        "sparse: the pods each pod probes (default 2 log2 N, at most 24; N - 1 or more = all)",
    ),
    Option("timeout", "--timeout", "PEER_AGENT_TIMEOUT", "e.g. 90s, 10m (default), 0 = none"),
    Option("job_uid", "--job-uid", "PEER_AGENT_JOB_UID", "the Job's controller-uid label"),
    Option(
        "trust_source",
        "--trust-source",
        "PEER_AGENT_TRUST_SOURCE",
        "service (default: only addresses DNS lists for the Service count) or any",
        _WAITING,
    ),
    Option("token", "--token", "PEER_AGENT_TOKEN", "shared secret that authenticates peers"),
    Option("token_file", "--token-file", "PEER_AGENT_TOKEN_FILE", "file holding the secret"),
    Option("hostfile", "--hostfile", "PEER_AGENT_HOSTFILE", "write an MPI hostfile", _WAITING),
    Option("peers_json", "--peers-json", "PEER_AGENT_PEERS_JSON", "write peers as JSON", _WAITING),
    Option("env_file", "--env-file", "PEER_AGENT_ENV_FILE", "write RANK, WORLD_SIZE, …", _WAITING),
    Option("slots", "--slots", "PEER_AGENT_SLOTS", "add slots=N to hostfile lines", _WAITING),
    Option(
        "hostfile_format",
        "--hostfile-format",
        "PEER_AGENT_HOSTFILE_FORMAT",
        "openmpi (default: host slots=N), mpich (host:N) or plain",
        _WAITING,
    ),
    Option(
        "exit_barrier",
        "--exit-barrier",
        "PEER_AGENT_EXIT_BARRIER",
        "stay the workload's parent; leave when every pod's workload has ended",
        frozenset({Command.RUN}),
    ),
    Option(
        "exit_timeout",
        "--exit-timeout",
        "PEER_AGENT_EXIT_TIMEOUT",
        "how long the exit barrier waits (default 5m; 0 = no limit)",
        frozenset({Command.RUN}),
    ),
    Option(
        "exit_led_by",
        "--exit-led-by",
        "PEER_AGENT_EXIT_LED_BY",
        "INDEX: when that pod's workload ends, stop every other pod's; all exit with its code",
        frozenset({Command.RUN}),
    ),
    Option(
        "exit_grace",
        "--exit-grace",
        "PEER_AGENT_EXIT_GRACE",
        "a stopped workload's time from SIGTERM to SIGKILL (default 10s; 0: SIGKILL at once)",
        frozenset({Command.RUN}),
    ),
    Option(
        "health_port",
        "--health-port",
        "PEER_AGENT_HEALTH_PORT",
        "sidecar /readyz and /livez port (default 29301)",
        frozenset({Command.SIDECAR}),
    ),
    Option("log_format", "--log-format", "PEER_AGENT_LOG_FORMAT", "text (default) or json"),
    Option(
        "log_level",
        "--log-level",
        "PEER_AGENT_LOG_LEVEL",
        "lowest level shown: debug, info (default), warning or error",
    ),
    Option(
        "dns_server", "--dns-server", "PEER_AGENT_DNS_SERVER", "HOST[:PORT], default resolv.conf"
    ),
    Option("hostname", "--hostname", "PEER_AGENT_HOSTNAME", "default: the kernel hostname"),
    Option(
        "driver",
        "--driver",
        "PEER_AGENT_DRIVER",
        "I/O loop: auto (default: selectors where it suffices, else anyio), anyio or selectors",
        _WAITING,
    ),
)

#: options naming a file the agent reads (``agent.io.podfacts`` reads them, config decides)
FILE_INPUTS = ("token_file", "peers_from")
#: options naming a file the agent writes (their directory must exist)
FILE_OUTPUTS = ("hostfile", "peers_json", "env_file")
#: options that are switches: the flag takes no value (its variable: true or false)
SWITCHES = ("exit_barrier",)
