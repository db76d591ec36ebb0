"""Property-based fuzzing of everything the agent parses from its pod: flags and variables, the
token, /etc/hosts, /etc/resolv.conf, durations and addresses. Every input ends in a value or the
project's own error (ConfigError, exit 2; ValueError inside the small parsers) — never another
exception, which the CLI would report as an internal error with a traceback (exit 1).

(The wire decoder and the manifest linter have their own fuzz tests next to their other tests.)
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import string

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from agent.config.model import Config
from agent.config.parse import (
    build_config,
    parse_duration,
    parse_host_port,
    parse_port,
    parse_probe,
)
from agent.errors import ConfigError
from agent.options import OPTIONS, Command
from agent.topology.podfiles import FileRead, PodFacts, find_fqdn_entry, parse_resolv_conf
from tests.support.budget import budget

pytestmark = pytest.mark.timeout(60)
FUZZ = settings(
    max_examples=budget(1.5),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# Text as flags and variables really carry it: any Unicode, and what Python makes of bytes that
# are not UTF-8 in argv or the environment (os.fsdecode: lone surrogates).
_raw_text = st.text(max_size=40) | st.binary(max_size=20).map(os.fsdecode)
_digits = st.integers(min_value=-5, max_value=100_000).map(str)
_unicode_digits = st.sampled_from(["²", "٣", "\uff11", "⑦", "1_0", " 3 ", "+3", "0x1f", "3.0", "३"])
_near = st.sampled_from(
    [
        "tcp",
        "tcp:29300",
        "icmp",
        "dns",
        "all",
        "none",
        "json",
        "10m",
        "1h30m",
        "500ms",
        "0",
        "1e309",
        "nan",
        "-1s",
        "127.0.0.1:53",
        "[::1]:5353",
        "::1",
        "10.96.0.10:",
        "[::1]x",
        "default",
        "svc",
        "example-job",
        "/tmp/out",
        "/nonexistent/dir/out",
    ]
)
_value = _raw_text | _digits | _unicode_digits | _near
_dests = [o.dest for o in OPTIONS]


@st.composite
def _values(draw: st.DrawFn) -> dict[str, str]:
    keys = draw(st.lists(st.sampled_from([*_dests, "bogus_option"]), unique=True, max_size=12))
    values = {k: draw(_value) for k in keys}
    if draw(st.booleans()):  # often close to a valid pod, so the deeper checks run too
        values.setdefault("peers", draw(_digits | _unicode_digits))
        values.setdefault("index", draw(_digits | _unicode_digits))
    return values


_hosts_line = st.one_of(
    st.text(max_size=60),
    st.builds(
        "{}\t{}.{}.{}.svc.{}\t{}".format,
        st.sampled_from(["10.0.0.1", "fd00::1", "x"]),
        st.sampled_from(["example-job-0", "a-1", "É-0"]),
        st.sampled_from(["svc", "", "Svc"]),
        st.sampled_from(["default", "ns", ""]),
        st.sampled_from(["cluster.local", "", "corp.example."]),
        st.sampled_from(["example-job-0", "a-1"]),
    ),
)
_resolv_line = st.one_of(
    st.text(max_size=60),
    st.builds(
        "{} {}".format,
        st.sampled_from(["nameserver", "search", "domain", "options", "#", ";"]),
        st.text(alphabet=string.printable + "²٣", max_size=40),
    ),
    st.builds("options ndots:{}".format, _digits | _unicode_digits),
)
_hosts = st.lists(_hosts_line, max_size=6).map("\n".join)
_resolv = st.lists(_resolv_line, max_size=6).map("\n".join)


@FUZZ
@given(
    command=st.sampled_from(Command),
    values=_values(),
    hostname=_raw_text | st.sampled_from(["example-job-0", "a-1", "job-²"]),
    hosts=_hosts,
    resolv=_resolv,
    sa_namespace=_raw_text,
    token=st.none() | st.binary(max_size=20),
)
@example(  # a Secret with random bytes, given as a variable: not UTF-8
    command=Command.WAIT,
    values={"peers": "2", "index": "0", "service": "s", "namespace": "n", "token": "\udcff\udc80"},
    hostname="a-0",
    hosts="",
    resolv="",
    sa_namespace="",
    token=None,
)
@example(  # a superscript two passes str.isdigit() but not int()
    command=Command.WAIT,
    values={"peers": "2", "index": "²", "service": "s", "namespace": "n"},
    hostname="a-0",
    hosts="",
    resolv="options ndots:²",
    sa_namespace="",
    token=None,
)
def test_any_configuration_is_a_config_or_a_config_error(
    command: Command,
    values: dict[str, str],
    hostname: str,
    hosts: str,
    resolv: str,
    sa_namespace: str,
    token: bytes | None,
) -> None:
    path = values.get("token_file", "")
    facts = PodFacts(
        hostname=hostname,
        hosts=hosts,
        resolv_conf=resolv,
        sa_namespace=sa_namespace,
        files={path: FileRead(error="Permission denied") if token is None else FileRead(token)},
    )
    try:
        config = build_config(command, values, facts)
    except ConfigError as error:
        assert error.problems
        for problem in error.problems:  # each names its flag and variable (or the unknown ones)
            assert problem.startswith("--") or problem.startswith("unknown options"), problem
        return
    assert isinstance(config, Config)
    t = config.topology
    # None: this pod is not one of the peers (a launcher, a pod outside the hostfile)
    assert t.index is None or 0 <= t.index < t.peers
    assert len(t.hostname(t.peers - 1)) <= 63
    assert config.timeout is None or config.timeout > 0
    assert config.token is None or isinstance(config.token, bytes)


@FUZZ
@given(st.text(max_size=30) | _near | _unicode_digits)
def test_a_duration_is_seconds_or_a_value_error(text: str) -> None:
    try:
        seconds = parse_duration(text)
    except ValueError:
        return
    assert 0 <= seconds < float("inf")


@FUZZ
@given(st.integers(0, 10**6), st.sampled_from(["ms", "s", "m", "h", ""]))
def test_a_well_formed_duration_means_what_it_says(n: int, unit: str) -> None:
    factor = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "": 1}[unit]
    assert parse_duration(f"{n}{unit}") == pytest.approx(n * factor)


@FUZZ
@given(st.text(max_size=30) | _near | _unicode_digits)
def test_ports_probes_and_addresses_are_values_or_value_errors(text: str) -> None:
    for parse in (parse_port, parse_probe, lambda t: parse_host_port(t, 53)):
        with contextlib.suppress(ValueError):
            parse(text)


@FUZZ
@given(
    st.ip_addresses(),
    st.none() | st.integers(1, 65535),
)
def test_an_address_and_port_round_trip(address: ipaddress._BaseAddress, port: int | None) -> None:
    host = str(address)
    if port is None:
        text = host
    elif address.version == 6:
        text = f"[{host}]:{port}"
    else:
        text = f"{host}:{port}"
    assert parse_host_port(text, 53) == (host, port or 53)


@FUZZ
@given(_hosts, _raw_text | st.sampled_from(["example-job-0", "a-1"]))
def test_any_hosts_file_yields_an_entry_or_none(hosts: str, hostname: str) -> None:
    entry = find_fqdn_entry(hosts, hostname)
    if entry is not None:
        assert entry.fqdn.startswith(hostname + ".")
        assert entry.subdomain and entry.namespace and entry.zone


@FUZZ
@given(_resolv)
@example("options ndots:²")
def test_any_resolv_conf_parses(text: str) -> None:
    resolv = parse_resolv_conf(text)
    assert 0 <= resolv.ndots <= 15
    assert all(isinstance(s, str) and s for s in resolv.nameservers)
