"""Outside review 9, claim 2 (docs/security.md, "Without a token": an outsider cannot "exhaust
the coordinator"; lookups of a claimed pod's name are made "one at a time per claimed index,
1 s after, then 2, 4, 8 s apart", so "outsiders claiming many indices cost DNS one name at a
time, not one query per claim"), on the tree of coordinators, with real agent processes and a
DNS server that counts each pod's queries and cuts the Service's answer short
(``tests/support/podsdns.py``), as for a Job of more than ~4,000 pods.

Past the cut, on the flat barrier a process at an unlisted loopback address that opens 200
member sessions in a row, each claiming pod 4 (published, its agent not started yet), costs
pod 0 one lookup of pod 4's name. On a sparse graph the same sessions cost the group
coordinator (and the root, for a claim of a member of group 0) one lookup each: the outsider
sets the rate of DNS queries.
"""

from __future__ import annotations

import socket
import time

import pytest

from agent.protocol.instance import instance_id
from agent.protocol.wire import Arrive, Hello, Identity, Role, encode
from tests.faults.conftest import JOB, NAMESPACE, SERVICE, ZONE, AgentProcess, Job, agent_argv
from tests.support.podsdns import CutServiceDNS

pytestmark = pytest.mark.timeout(90)

PEERS, CLAIMED = 8, 4  # groups of 3: pod 4's coordinator is pod 3
#: who opens the sessions: (job uid it claims, sessions, how long it keeps each open after its
#: arrival). The dwell is the sender's own pace, so that the coordinator has read the arrival
#: before the close (nothing the sender could await). A stranger (a pod of another run of the
#: Job: another uid) "costs nothing ... no DNS query is made for it" (docs/security.md).
SENDERS = {"outsider": ("", 200, 0.02), "stranger": ("another-run", 40, 0.25)}
SPARSE = ("--reach", "sparse", "--reach-degree", "4")
#: lookups of the claimed name the flat barrier's coordinator made for the same sessions: 1;
#: the documented pace (1 s, then 2, 4, 8 s apart) allows about 3 over the flood's seconds
AT_MOST = 8


@pytest.mark.parametrize("sender", sorted(SENDERS))
@pytest.mark.parametrize("reach", ["all", "sparse"])
def test_an_outsiders_member_sessions_cost_the_coordinator_a_paced_number_of_lookups(
    processes: list[AgentProcess], reach: str, sender: str
) -> None:
    """The Service's answer cut to pods 0 and 1. Pods 0-3 and 5-7 start, pod 4 is published
    but its agent has not started. An outsider at 127.0.<net>.50 opens 200 member sessions to
    pod 4's coordinator one after the other, each saying hello as pod 4 (a new instance each
    time), arriving, and closing 20 ms later.

    The coordinator may ask pod 4's name a few times (its pace), not once a session. Held with
    ``--reach all`` (pod 0: 1 lookup). Seen with ``--reach sparse``: group coordinator 3 asked
    example-job-4's name once for every session (201 lookups: 200 sessions and its own; 709
    for 708 sessions in 8 s from a scratch loop; 192 at the root for claims of pod 1): an
    outsider anywhere that can reach the port sets how fast a coordinator queries cluster
    DNS. A stranger's 40 sessions (another uid, one every 0.25 s) cost group coordinator 3
    a lookup every other session or so (20 for 40; 23 for 30 from a scratch loop; 2 over the
    same time with no sessions), where
    the flat barrier's coordinator asks nothing for them."""
    uid, sessions, dwell = SENDERS[sender]
    extra = SPARSE if reach == "sparse" else ()
    coordinator = CLAIMED - CLAIMED % 3 if reach == "sparse" else 0
    with CutServiceDNS(PEERS, f"{SERVICE}.{NAMESPACE}.svc.{ZONE}", ()) as dns:
        job = Job(dns, PEERS, timeout="40s")
        job.publish()
        dns.listed = (job.address(0), job.address(1))  # a Job too big for one answer
        for i in range(PEERS):
            if i != CLAIMED:
                argv = agent_argv(job, "wait", i, "--timeout", "40s", *extra)
                argv[argv.index("--dns-server") + 1] = dns.server_for(i)
                processes.append(AgentProcess(argv))
        processes[coordinator].wait_line("waiting 5s: ", timeout=30)
        answered = sum(_claim(job, coordinator, k, uid, dwell) for k in range(sessions))
        asked = dns.per_name[(coordinator, job.fqdn(CLAIMED) + ".")]
    assert answered == sessions
    assert asked <= AT_MOST, (reach, sender, asked)


def _claim(job: Job, coordinator: int, k: int, uid: str, dwell: float) -> bool:
    """One member session claiming pod ``CLAIMED`` of the run ``uid`` from an unlisted address:
    hello, arrival, close. Whether the coordinator answered the hello."""
    me = Identity(JOB, uid, CLAIMED, job.peers, job.port, instance_id(time.time_ns(), k + 1))
    with socket.create_connection(
        (job.address(coordinator), job.port), timeout=5, source_address=(job.address(49), 0)
    ) as session:
        session.sendall(encode(Hello(me, Role.MEMBER, "ab" * 16)))
        answered = bool(session.recv(4096))
        session.sendall(encode(Arrive("0" * 32, "0" * 32)))
        time.sleep(dwell)
        return answered
