"""A target nobody listens to yet is retried less and less often, up to ``refused_backoff``'s cap
where the probe says hello (its agent, once up, says hello and is retried at once), and at
``backoff``'s 1 s where no hello can come (pure, simulated time)."""

from __future__ import annotations

import pytest

from agent.config.parse import build_config
from agent.core.causes import Cause, Failure
from agent.core.discovery import discovery_for
from agent.core.timing import DEFAULT_TIMING
from agent.topology.podfiles import PodFacts

pytestmark = pytest.mark.timeout(10)

POD = PodFacts(hostname="job-3", hosts="10.244.1.7\tjob-3.svc.ns.svc.cluster.local\tjob-3\n")
REFUSED = Failure("connect to port 29300: refused", Cause.CONNECT_REFUSED)
TIMEOUT = Failure("connect to port 29300: timed out", Cause.CONNECT_TIMEOUT)
JOB = {"peers": "1000", "index": "3", "service": "svc", "namespace": "ns"}


def _gaps(values: dict[str, str], failure: Failure, tries: int) -> list[float]:
    """The longest gap (rand just under 1) after each of ``tries`` failed attempts of the
    first target, each retried as soon as it is due."""
    config = build_config("wait", {**JOB, **values}, POD)
    reach = discovery_for(
        config, now=0.0, rand=lambda: 0.999, timing=DEFAULT_TIMING, max_in_flight=256
    ).reach
    target = next(i for i in reach.targets if i != 3)
    reach.schedule([target])
    now, gaps = 0.0, []
    for _ in range(tries):
        assert target in reach.start_due(now, limit=1_000)
        reach.failed(target, failure, now)
        at = reach.peers[target].next_at
        gaps.append(round(at - now, 2))
        now = at
        reach.start_due(now - 1e-9, limit=1_000)  # nothing else is due before it
    return gaps


@pytest.mark.parametrize(
    ("values", "failure", "last_gap"),
    [
        pytest.param({}, REFUSED, 29.97, id="hello-refused-to-30s"),
        pytest.param({"probe": "tcp:8080"}, REFUSED, 1.0, id="no-hello-refused-1s"),
        pytest.param({"probe": "icmp"}, REFUSED, 1.0, id="icmp-1s"),
        pytest.param({}, TIMEOUT, 1.0, id="hello-timeout-1s"),
    ],
)
def test_a_refused_target_backs_off_to_its_cap(
    values: dict[str, str], failure: Failure, last_gap: float
) -> None:
    gaps = _gaps(values, failure, 14)
    assert gaps[0] == pytest.approx(0.1, abs=0.01)  # the first retries as soon as before
    assert gaps == sorted(gaps)
    assert gaps[-1] == pytest.approx(last_gap, abs=0.01)


def test_a_hello_retries_a_refused_target_at_once() -> None:
    config = build_config("wait", JOB, POD)
    reach = discovery_for(
        config, now=0.0, rand=lambda: 0.999, timing=DEFAULT_TIMING, max_in_flight=256
    ).reach
    target = next(i for i in reach.targets if i != 3)
    now = 0.0
    for _ in range(12):
        reach.start_due(now, limit=1_000)
        reach.failed(target, REFUSED, now)
        now = reach.peers[target].next_at
    reach.start_due(now, limit=1_000)
    reach.failed(target, REFUSED, now)
    assert reach.peers[target].next_at - now > 20  # waits long: nobody listens
    reach.nudge(target, now + 1.0)  # its agent is up: it said hello
    assert target in reach.start_due(now + 1.0, limit=1_000)
