"""Every hint, from the typed causes alone: a table of what was seen and what the user is told."""

from __future__ import annotations

import pytest

from agent.config.parse import build_config
from agent.core.causes import Cause
from agent.core.hints import hints_for, nobody_listens
from agent.topology.podfiles import PodFacts, parse_resolv_conf

pytestmark = pytest.mark.timeout(10)

TOPOLOGY = build_config(
    "wait",
    {"peers": "3", "index": "0", "service": "headless-svc", "namespace": "default"},
    PodFacts(hostname="example-job-0"),
).topology
CLUSTER = parse_resolv_conf("search default.svc.cluster.local svc.cluster.local\n")
DEFAULT_POLICY = parse_resolv_conf("search example.internal\nnameserver 10.0.0.2\n")

C = Cause
HINTS = [
    # (causes of peers 0..2, resolv.conf, the one hint expected, by a word of it)
    pytest.param([C.NXDOMAIN] * 3, CLUSTER, "publishNotReadyAddresses", id="nothing-resolves"),
    pytest.param([None, C.NXDOMAIN, C.NOT_LISTED], CLUSTER, "not in DNS", id="some-not-in-dns"),
    pytest.param([None, C.STRANGER, None], CLUSTER, "stale DNS record", id="stranger"),
    pytest.param([None, None, C.OTHER_INSTANCE], CLUSTER, "stale DNS record", id="old-instance"),
    pytest.param([None, C.DNS_FAILED, None], CLUSTER, "cluster DNS itself", id="dns-failing"),
    pytest.param(
        [None, C.CONNECT_REFUSED, C.CONNECT_REFUSED], CLUSTER, "nobody listens", id="all-left"
    ),
    pytest.param([None, C.CONNECT_TIMEOUT, None], CLUSTER, "NetworkPolicy", id="dropped"),
    pytest.param([None, C.WRONG_TOKEN, None], CLUSTER, "share the token", id="wrong-token"),
    pytest.param([None, None, C.REFUSED_BY_PEER], CLUSTER, "share the token", id="refused-token"),
    pytest.param([None, None, None], DEFAULT_POLICY, "dnsPolicy", id="no-search-list"),
    # review10: past a cut answer, peers whose names were not asked are not "not in DNS"
    pytest.param([None, C.NOT_ASKED, C.NOT_ASKED], CLUSTER, "cut short", id="past-a-cut"),
]


@pytest.mark.parametrize("causes, resolv, word", HINTS)
def test_each_hint_comes_from_its_cause(
    causes: list[Cause | None], resolv: object, word: str
) -> None:
    reasons = ["" if c is None else c.value for c in causes]
    [hint] = hints_for(TOPOLOGY, resolv, reasons, causes, port=29300)  # type: ignore[arg-type]
    assert word in hint


def test_the_wording_of_a_reason_decides_nothing() -> None:
    """A reason that says "NXDOMAIN" or "refused" in its text, under another cause, gives no
    hint of those: only the cause counts (a peer's text could say anything)."""
    causes: list[Cause | None] = [None, C.HELLO_FAILED, C.HELLO_FAILED]
    reasons = ["", "NXDOMAIN", "connect to port 29300: refused; timed out"]
    assert hints_for(TOPOLOGY, CLUSTER, reasons, causes, port=29300) == []


def test_a_refused_peer_among_others_is_not_taken_for_all_having_left() -> None:
    causes: list[Cause | None] = [None, C.CONNECT_REFUSED, C.NXDOMAIN]
    hints = hints_for(TOPOLOGY, CLUSTER, ["", "refused", "NXDOMAIN"], causes, port=29300)
    assert not any("nobody listens" in h for h in hints)


LEFT = "this pod restarted after they passed the barrier and left"
NOT_STARTED = "their agents have not started yet (an image pull, init containers before them)"


@pytest.mark.parametrize(
    ("causes", "own", "may_have_left"),
    [
        pytest.param([None, C.CONNECT_REFUSED, C.CONNECT_REFUSED], 0, True, id="only-itself"),
        pytest.param([C.CONNECT_REFUSED, None, C.CONNECT_REFUSED], 1, True, id="only-itself-1"),
        pytest.param([None, None, C.CONNECT_REFUSED], 0, False, id="another-reached"),
        pytest.param([None, C.CONNECT_REFUSED, None], 2, False, id="another-reached-2"),
        pytest.param([C.CONNECT_REFUSED, C.CONNECT_REFUSED], None, False, id="not-a-peer"),
    ],
)
def test_nobody_listening_is_said_to_have_left_only_when_it_can_have(
    causes: list[Cause | None], own: int | None, may_have_left: bool
) -> None:
    """Pods whose agents refuse have most often not started them yet (the late pod of every
    demo, an image pull). "They passed the barrier and left" can be true only when no peer but
    this pod is reached: a reached peer that had passed would have released this pod too, and
    one still waiting means nobody has passed."""
    hint = nobody_listens(causes, 29300, own=own)
    assert hint is not None and NOT_STARTED in hint
    assert (LEFT in hint) is may_have_left
    if may_have_left:
        assert "only sidecar mode lets a pod that restarts after the barrier rejoin" in hint


@pytest.mark.parametrize("own", [0, None])
def test_a_refused_probe_port_is_the_workloads_not_the_agents(own: int | None) -> None:
    """``--probe tcp:PORT`` refused: PORT is named, and the workload is said not to listen,
    not the agents (which may be up and in session: an outside review saw the agent's port
    named, with "their agents have not started yet" and "this pod restarted after they left")."""
    causes = [None, C.CONNECT_REFUSED, C.CONNECT_REFUSED]
    hint = nobody_listens(causes, 29300, own=own, probe_port=8080)
    assert hint is not None and "port 8080 (--probe tcp:8080)" in hint and "workload" in hint
    assert "29300" not in hint and NOT_STARTED not in hint and LEFT not in hint
    assert hint in hints_for(TOPOLOGY, CLUSTER, [""] * 3, causes, port=29300, probe_port=8080)


def test_the_services_own_name_failing_is_named_in_the_timeouts_hint() -> None:
    """Review10: the Service's name timing out while the pods' names answer held the barrier,
    and pod 0 (every peer reached) said nothing of DNS."""
    from agent.core.asking import service_hint
    from agent.core.causes import Failure

    assert service_hint(None, "s.n.svc.cluster.local") == []
    [hint] = service_hint(Failure("DNS timeout", C.DNS_FAILED), "s.n.svc.cluster.local")
    assert "DNS" in hint and "s.n.svc.cluster.local" in hint and "DNS timeout" in hint
