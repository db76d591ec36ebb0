"""Outside review 10, claim 1's diagnosis (docs/configuration.md "How fast the agent asks DNS",
docs/troubleshooting.md): "DNS is slow" and the timeout hint "cluster DNS, not the peers, is the
bottleneck" are said when DNS is the cause. Here cluster DNS answers every pod's own name but
drops every query for the headless Service's name (a server that answers some names and not
others), so no member can count the coordinator: DNS is the only cause. Real agent processes on
loopback, a DNS server the test controls.
"""

from __future__ import annotations

import pytest

from tests.faults.conftest import AgentProcess, Job, agent_argv
from tests.support.faultdns import FaultDNS

pytestmark = pytest.mark.timeout(60)


def test_a_timeout_caused_by_the_services_name_timing_out_names_dns_in_every_pod(
    processes: list[AgentProcess],
) -> None:
    """Pods 0-2 up, every name published, the Service's name silent, ``--timeout 15s``.

    Seen: pods 1 and 2 say "hint: cluster DNS itself is failing (DNS timeout)" (and also that
    pod 0's index "is claimed from an address DNS does not list for it" with the advice to
    check --listen and a service mesh, though DNS lists it: its name was never asked). Pod 0,
    whose log a user reads first, reached every peer and says only "missing
    example-job-1…: barrier: connected, not arrived yet" for pods 1 and 2: no "DNS is slow"
    line, no DNS hint; the peers look like the cause."""
    with FaultDNS() as dns:
        job = Job(dns, 3)
        job.publish()
        dns.fault("silence", job.service)
        processes.extend(
            AgentProcess(agent_argv(job, "wait", i, "--timeout", "15s")) for i in range(3)
        )
        codes = [p.finish(timeout=40) for p in processes]
    assert codes == [3, 3, 3]
    for i, p in enumerate(processes):
        report = "".join(line for _, line in p.lines if "error:" in line)
        assert "DNS" in report, f"pod {i} does not name DNS:\n{report}"
