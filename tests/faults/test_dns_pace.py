"""DNS that degrades gracefully (issue 22 item 7), with real agent processes on loopback.

A Service of more pods than one DNS message holds gets its answer cut (over UDP TC and no
records, over TCP the first few addresses, TC set), so every pod asks for most of its peers by
name, all at once. Each pod asks on a DNS port of its own (``tests.support.podsdns``), one
thread answering them all, so the test counts what every pod asked: a budget in queries, not
a time.
"""

from __future__ import annotations

import json

import pytest

from tests.faults.conftest import NAMESPACE, SERVICE, ZONE, AgentProcess, Job, Record, agent_argv
from tests.support.podsdns import CutServiceDNS

SERVICE_FQDN = f"{SERVICE}.{NAMESPACE}.svc.{ZONE}"
PEERS, CUT = 24, 8
#: the server's CPU per answer: 200 answers a second, so the Job's first burst of queries
#: (about 400) queues up and its tail times out, as at a CoreDNS instance that falls behind
SERVICE_TIME = 0.005
#: what a pod must ask at least: its own name, the Service over UDP (TC) then over TCP, and each
#: peer the cut answer leaves out by name (16 of the 23, or 15 and its own for a pod left out)
FLOOR = 1 + 2 + (PEERS - CUT)
#: the budget: 4 x the floor, for what the agents' start spread on a loaded machine adds (a
#: Service round about once a second, a name asked again when its refused addresses grow
#: stale) and a name asked again after a timeout. Without pacing the first pods asked
#: 150-180 times (each timeout retried within a second, each hello hurrying a retry)
BUDGET = 4 * FLOOR


@pytest.mark.timeout(150)
def test_a_cut_service_answer_releases_every_pod_within_a_query_budget(
    processes: list[AgentProcess], record: Record
) -> None:
    """24 pods, the Service's answer cut at 8 addresses, a DNS server that falls behind: every
    pod passes the barrier, having asked DNS at most ``BUDGET`` times, and says once that the
    answer is cut short."""
    with CutServiceDNS(PEERS, SERVICE_FQDN, (), service_time=SERVICE_TIME) as dns:
        job = Job(dns, PEERS, timeout="90s")
        job.publish()
        dns.listed = tuple(job.address(i) for i in range(CUT))
        for i in range(PEERS):
            argv = agent_argv(job, "wait", i, "--timeout", "90s", "--log-format", "json")
            argv[argv.index("--dns-server") + 1] = dns.server_for(i)
            processes.append(AgentProcess(argv))
        codes = [p.finish(120) for p in processes]
        asked = [dns.per_pod[i] for i in range(PEERS)]
    assert codes == [0] * PEERS, [p.stderr[-600:] for p in processes if p.proc.returncode][:2]
    for p in processes:
        events = [json.loads(line).get("event") for line in p.stderr.splitlines()]
        assert events.count("truncated") == 1, p.stderr[-600:]
    assert max(asked) <= BUDGET, asked
    record(queries_max=max(asked), queries_mean=round(sum(asked) / PEERS, 1), budget=BUDGET)
