"""Scenario tables for deriving the topology and for every kind of bad input."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from agent.config.model import BarrierMode
from agent.config.parse import build_config, load_config, parse_duration, parse_host_port
from agent.errors import ConfigError
from agent.io.podfacts import read_pod_facts
from agent.topology.podfiles import PodFacts

pytestmark = pytest.mark.timeout(10)

HOSTS = (
    "127.0.0.1\tlocalhost\n"
    "::1\tlocalhost ip6-localhost\n"
    "# Entries added by HostAliases.\n"
    "10.244.1.7\texample-job-1.headless-svc.team-a.svc.cluster.local\texample-job-1\n"
)
RESOLV = (
    "search team-a.svc.cluster.local svc.cluster.local cluster.local\n"
    "nameserver 10.96.0.10\noptions ndots:5\n"
)
POD = PodFacts(hostname="example-job-1", hosts=HOSTS, resolv_conf=RESOLV)


def test_a_pod_needs_only_the_peer_count() -> None:
    config = build_config("wait", {"peers": "3", "index": "1"}, POD)
    t = config.topology
    assert (t.job, t.service, t.namespace, t.zone) == (
        "example-job",
        "headless-svc",
        "team-a",
        "cluster.local",
    )
    assert t.fqdn(2) == "example-job-2.headless-svc.team-a.svc.cluster.local."
    assert t.display(0) == "example-job-0.headless-svc.team-a.svc.cluster.local"
    assert config.resolv.nameservers == ("10.96.0.10",)
    assert config.resolv.ndots == 5
    assert config.timeout == 600.0 and config.barrier is BarrierMode.ALL and config.port == 29300


DERIVED = [
    pytest.param({}, POD, ("example-job", "headless-svc", "team-a", "cluster.local"), id="hosts"),
    pytest.param(
        {"cluster_domain": "corp.example", "namespace": "ns2", "service": "svc2"},
        POD,
        ("example-job", "svc2", "ns2", "corp.example"),
        id="flags-win-over-hosts",
    ),
    pytest.param(
        {"service": "svc", "namespace": "ns"},
        PodFacts(hostname="my-job-1"),
        ("my-job", "svc", "ns", "cluster.local"),
        id="no-hosts-line-default-zone",
    ),
    pytest.param(
        {"service": "svc"},
        PodFacts(hostname="my-job-1", sa_namespace="from-sa\n"),
        ("my-job", "svc", "from-sa", "cluster.local"),
        id="namespace-from-serviceaccount",
    ),
    pytest.param(
        {"job_name": "other"},
        POD,
        ("other", "headless-svc", "team-a", "cluster.local"),
        id="explicit-job-ignores-hostname",
    ),
    pytest.param(
        {},
        PodFacts(
            hostname="Example-Job-1",
            hosts="10.0.0.1 example-job-1.s.ns.svc.my.zone. example-job-1\n",
        ),
        ("example-job", "s", "ns", "my.zone"),
        id="case-and-trailing-dot",
    ),
]


@pytest.mark.parametrize(("values", "facts", "expected"), DERIVED)
def test_topology_is_derived(
    values: dict[str, str], facts: PodFacts, expected: tuple[str, ...]
) -> None:
    t = build_config("wait", {"peers": "3", "index": "1", **values}, facts).topology
    assert (t.job, t.service, t.namespace, t.zone) == expected


BAD = [
    pytest.param(
        {"peers": "abc"}, ["--peers / PEER_AGENT_PEERS: not a positive integer"], id="peers-nan"
    ),
    pytest.param({"peers": "0"}, ["--peers / PEER_AGENT_PEERS"], id="peers-zero"),
    pytest.param({"peers": ""}, ["--peers / PEER_AGENT_PEERS: required"], id="peers-missing"),
    pytest.param(
        {"index": "x"}, ["--index / JOB_COMPLETION_INDEX: not a non-negative"], id="index-nan"
    ),
    pytest.param({"index": "-1"}, ["--index / JOB_COMPLETION_INDEX"], id="index-negative"),
    pytest.param({"index": "3"}, ["index 3 is not below the peer count 3"], id="index-too-big"),
    pytest.param({"index": ""}, ["--index / JOB_COMPLETION_INDEX: required"], id="index-missing"),
    pytest.param(
        {"job_name": "j" * 62},
        ["--job-name / PEER_AGENT_JOB_NAME: peer hostname", "over 63 characters"],
        id="hostname-too-long",
    ),
    pytest.param({"job_name": "Bad_Job"}, ["not a DNS-1123 label"], id="job-not-dns"),
    pytest.param({"service": "a.b"}, ["--service / PEER_AGENT_SERVICE"], id="service-not-label"),
    pytest.param({"port": "70000"}, ["--port / PEER_AGENT_PORT: not a port"], id="port-range"),
    pytest.param({"port": "http"}, ["--port / PEER_AGENT_PORT"], id="port-nan"),
    pytest.param(
        {"timeout": "soon"}, ["--timeout / PEER_AGENT_TIMEOUT: not a duration"], id="duration"
    ),
    pytest.param({"timeout": "-5s"}, ["--timeout / PEER_AGENT_TIMEOUT"], id="duration-negative"),
    pytest.param(
        {"dns_server": "[::1"},
        ["--dns-server / PEER_AGENT_DNS_SERVER: not HOST[:PORT]"],
        id="dns-server-bracket",
    ),
    # what no peer's decoder takes: the pod could reach no one, itself included
    pytest.param(
        {"job_uid": "u" * 129}, ["--job-uid / PEER_AGENT_JOB_UID: 129 characters"], id="uid-long"
    ),
    pytest.param(
        {"job_uid": "a\tb"}, ["--job-uid / PEER_AGENT_JOB_UID: 'a\\tb'"], id="uid-unprintable"
    ),
    pytest.param(
        {"probe": "udp"},
        ["--probe / PEER_AGENT_PROBE: unknown probe 'udp' (use tcp, tcp:PORT, icmp or dns)"],
        id="probe",
    ),
    pytest.param({"probe": "tcp:0"}, ["--probe / PEER_AGENT_PROBE: not a port"], id="probe-port"),
    pytest.param(
        {"barrier": "some"},
        ["--barrier / PEER_AGENT_BARRIER: unknown barrier 'some' (use all or none)"],
        id="barrier",
    ),
    pytest.param(
        {"log_format": "xml"},
        ["--log-format / PEER_AGENT_LOG_FORMAT: unknown log format 'xml' (use text or json)"],
        id="log-format",
    ),
    pytest.param(
        {"log_level": "verbose"},
        [
            "--log-level / PEER_AGENT_LOG_LEVEL: unknown log level 'verbose' (use debug, info, "
            "warning or error)"
        ],
        id="log-level",
    ),
    pytest.param(
        {"dns_server": "dns.local"}, ["--dns-server / PEER_AGENT_DNS_SERVER"], id="dns-host"
    ),
    pytest.param(
        {"dns_server": "10.0.0.1:x"}, ["--dns-server / PEER_AGENT_DNS_SERVER"], id="dns-port"
    ),
    pytest.param({"listen": "eth0"}, ["--listen / PEER_AGENT_LISTEN"], id="listen"),
    pytest.param({"slots": "0"}, ["--slots / PEER_AGENT_SLOTS"], id="slots"),
    pytest.param({"token": "a", "token_file": "/x"}, ["not both"], id="token-twice"),
    pytest.param(
        {"token_file": "/nonexistent/token"},
        ["--token-file / PEER_AGENT_TOKEN_FILE: cannot read '/nonexistent/token'"],
        id="token-file-unreadable",
    ),
    pytest.param(
        {"hostfile": "/nonexistent/dir/hosts"},
        ["--hostfile / PEER_AGENT_HOSTFILE: directory '/nonexistent/dir' does not exist"],
        id="output-dir-missing",
    ),
    pytest.param(
        {"cluster_domain": "bad..zone"}, ["--cluster-domain / PEER_AGENT_CLUSTER_DOMAIN"], id="zone"
    ),
]


@pytest.mark.parametrize(("values", "expected"), BAD)
def test_bad_input_names_flag_and_variable(values: dict[str, str], expected: list[str]) -> None:
    read = read_pod_facts(values, environ={})  # the files and directories the values name
    facts = replace(POD, files=read.files, missing_dirs=read.missing_dirs)
    with pytest.raises(ConfigError) as info:
        build_config("wait", {"peers": "3", "index": "1", **values}, facts)
    text = "\n".join(info.value.problems)
    for fragment in expected:
        assert fragment in text


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as info:
        build_config(
            "wait",
            {
                "peers": "0",
                "index": "abc",
                "port": "0",
                "timeout": "x",
                "probe": "udp",
                "barrier": "some",
                "log_format": "xml",
            },
            PodFacts(hostname="no-fqdn"),
        )
    names = [p.split(":", 1)[0] for p in info.value.problems]
    assert names == [
        "--peers / PEER_AGENT_PEERS",
        "--index / JOB_COMPLETION_INDEX",
        "--service / PEER_AGENT_SERVICE",
        "--namespace / PEER_AGENT_NAMESPACE",
        "--probe / PEER_AGENT_PROBE",
        "--port / PEER_AGENT_PORT",
        "--barrier / PEER_AGENT_BARRIER",
        "--timeout / PEER_AGENT_TIMEOUT",
        "--log-format / PEER_AGENT_LOG_FORMAT",
    ]


def test_hostname_without_index_suffix_is_explained() -> None:
    with pytest.raises(ConfigError, match="does not end in '-1'"):
        build_config("wait", {"peers": "3", "index": "1"}, PodFacts(hostname="worker", hosts=HOSTS))


def test_flags_win_over_variables() -> None:
    env = {"PEER_AGENT_PEERS": "5", "JOB_COMPLETION_INDEX": "1", "PEER_AGENT_PORT": "1234"}
    config = load_config("wait", {"peers": "4", "port": None}, replace(POD, environ=env))
    assert config.topology.peers == 4 and config.port == 1234


def test_token_file_is_read_and_stripped(tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text("s3cret\n")
    values = {"peers": "2", "index": "1", "token_file": str(secret)}
    facts = replace(read_pod_facts(values, environ={}), hostname=POD.hostname, hosts=POD.hosts)
    config = build_config("wait", values, facts)
    assert config.token == b"s3cret"
    assert "s3cret" not in repr(config)


def test_health_port_must_differ_in_sidecar_mode() -> None:
    with pytest.raises(ConfigError, match="--health-port"):
        build_config("sidecar", {"peers": "2", "index": "1", "health_port": "29300"}, POD)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("0", 0.0), ("90", 90.0), ("90s", 90.0), ("10m", 600.0), ("1h30m", 5400.0), ("250ms", 0.25)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "m", "10x", "1m 2s", "nan", "inf", "s10"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10.96.0.10", ("10.96.0.10", 53)),
        ("127.0.0.1:5353", ("127.0.0.1", 5353)),
        ("[fd00::a]:54", ("fd00::a", 54)),
        ("fd00::a", ("fd00::a", 53)),
    ],
)
def test_dns_server_forms(text: str, expected: tuple[str, int]) -> None:
    assert parse_host_port(text, 53) == expected


def test_zero_timeout_means_no_limit() -> None:
    assert build_config("wait", {"peers": "2", "index": "1", "timeout": "0"}, POD).timeout is None
