"""A DNS server that answers late (issue 22: at most 32 queries a pod), with real agent processes.

A server that falls behind answers late, not never. The agent gave a query up at
``Timing.dns_timeout`` (2 s) and asked the name again, so every answer that came late cost its
name a second query, which the server answered as late: pods of 300 real agents on two
starved cores asked names two or three times, up to 43 queries. Now a query waits
``Timing.dns_answer_wait`` (5 s) and a late answer is used (the pace still slows down: the
server has fallen behind). Each pod asks on a DNS port of its own (``tests.support.podsdns``),
so the test counts what every pod asked of each name: a budget in queries, not a time.
"""

from __future__ import annotations

import pytest

from agent.core.timing import DEFAULT_TIMING
from tests.faults.conftest import (
    NAMESPACE,
    SERVICE,
    ZONE,
    AgentProcess,
    Job,
    Record,
    agent_argv,
    fqdn,
)
from tests.support.podsdns import CutServiceDNS

SERVICE_FQDN = f"{SERVICE}.{NAMESPACE}.svc.{ZONE}"
#: a sparse graph (degree 8 at 16 pods), the Service's answer cut: each pod asks its targets
#: by name, about 10 names
PEERS, CUT = 16, 4
#: the first queries of pods' names (about 6 a pod: the Job's first burst) answered this late:
#: past ``dns_timeout``, within ``dns_answer_wait``
LATE, DELAY = 96, 3.0


def _norm(name: str) -> str:
    return name.lower().rstrip(".")


@pytest.mark.timeout(150)
def test_answers_that_come_late_are_used_and_no_name_is_asked_twice(
    processes: list[AgentProcess], record: Record
) -> None:
    """16 pods on a sparse graph past a cut answer; the first 96 queries of the pods' names are
    answered 3 s late. Every pod passes the barrier, and none asks a peer's name again but
    for names whose agents refused for a while (``Timing.refused_total_most`` at most: a name
    whose addresses keep refusing is asked again past its window): before, each late answer
    was a timeout and its name was asked again, about six names a pod."""
    assert DEFAULT_TIMING.dns_timeout < DELAY < DEFAULT_TIMING.dns_answer_wait
    with CutServiceDNS(PEERS, SERVICE_FQDN, ()) as dns:
        job = Job(dns, PEERS, timeout="90s")
        job.publish()
        dns.listed = tuple(job.address(i) for i in range(CUT))
        dns.fault("delay", delay=DELAY, count=LATE)  # every name but the Service's (its own)
        for i in range(PEERS):
            extra = ("--timeout", "90s", "--reach", "sparse", "--log-format", "json")
            argv = agent_argv(job, "wait", i, *extra)
            argv[argv.index("--dns-server") + 1] = dns.server_for(i)
            processes.append(AgentProcess(argv))
        codes = [p.finish(120) for p in processes]
        asked = dict(dns.per_name)
        per_pod = [dns.per_pod[i] for i in range(PEERS)]
    assert codes == [0] * PEERS, [p.stderr[-600:] for p in processes if p.proc.returncode][:2]
    names = {_norm(fqdn(i)): i for i in range(PEERS)}
    # (pod, the peer whose name it asked) -> how many times: a peer's name, not its own
    by_peer = {
        (pod, names[_norm(name)]): n
        for (pod, name), n in asked.items()
        if _norm(name) in names and names[_norm(name)] != pod
    }
    again = {
        pod: sorted(i for (p, i), n in by_peer.items() if p == pod and n > 1)
        for pod in range(PEERS)
    }
    repeats = {pod: sum(n - 1 for (p, _), n in by_peer.items() if p == pod) for pod in range(PEERS)}
    assert max(repeats.values()) <= DEFAULT_TIMING.refused_total_most, again
    record(
        queries_max=max(per_pod),
        queries_mean=round(sum(per_pod) / PEERS, 1),
        repeats_max=max(repeats.values()),
    )
