"""DNS faults a cluster produces at random: the barrier still passes, and while a fault lasts the
agent names it the way users debug it (SERVFAIL, REFUSED, DNS timeout, NXDOMAIN, …).

In-process agents read their progress lines (every 0.25 s here instead of 5 s); the exit-3
messages are read from agent processes, as a user sees them in ``kubectl logs``.
"""

from __future__ import annotations

import time
from typing import cast

import anyio
import pytest

from agent.config.model import Config
from agent.core.timing import DEFAULT_TIMING
from tests.faults.conftest import (
    JOB,
    AgentProcess,
    Job,
    Pod,
    Record,
    agent_argv,
    agent_deps,
    all_done,
    released,
)
from tests.support.faultdns import FaultDNS, Mode

pytestmark = pytest.mark.usefixtures("fast_progress")


def _reached_address(pod: Pod, peer: int) -> str:
    for event in pod.events:
        if event.kind == "reached" and event.fields["peer"] == peer:
            return str(event.fields["address"])
    raise AssertionError(f"pod {pod.index} never reached pod {peer}:\n{pod.messages()}")


async def _run(job: Job) -> list[Pod]:
    """Start every pod of ``job`` and wait until all of them leave."""
    async with anyio.create_task_group() as tg:
        pods = [job.start(tg, i) for i in range(job.peers)]
        await all_done(pods)
    return pods


# --- a fault that lasts: named while it lasts, survived when it ends ------------------------------
LASTING = [
    pytest.param("servfail", "SERVFAIL", id="servfail"),
    pytest.param("refused", "REFUSED", id="refused"),
    pytest.param("silence", "DNS timeout", id="silence"),
    pytest.param("empty", "no address record", id="no-address-record"),
]


@pytest.mark.timeout(30)
@pytest.mark.parametrize(("fault", "reason"), LASTING)
@pytest.mark.asyncio
async def test_a_lasting_dns_fault_is_named_in_progress_then_the_barrier_passes(
    fault_dns: FaultDNS, record: Record, fault: str, reason: str
) -> None:
    """While cluster DNS fails every query, each pod's progress line names the failure for its
    peers; once DNS heals, all three pods pass the barrier."""
    job = Job(fault_dns, 3)
    job.publish()
    if fault == "empty":
        for name in [job.service, *map(job.fqdn, range(3))]:
            fault_dns.set(name)
    else:
        fault_dns.fault(cast(Mode, fault))

    async with anyio.create_task_group() as tg:
        pods = [job.start(tg, i) for i in range(3)]
        lines = [
            (await p.progress_with(f"{JOB}-{(p.index + 1) % 3} ({reason})")).message for p in pods
        ]
        assert not any(p.done.is_set() for p in pods), "a pod left while DNS failed"
        fault_dns.clear()
        job.publish()
        await all_done(pods)
    assert released(pods), [p.error for p in pods]
    assert all("0/3 peers reached" in line for line in lines), lines
    record(tries=fault_dns.queries(), progress_line=lines[0])


@pytest.mark.timeout(30)
@pytest.mark.asyncio
async def test_a_pod_not_yet_published_is_named_then_the_barrier_passes(
    fault_dns: FaultDNS, record: Record
) -> None:
    """Pod 2's records are not published yet (its pod is not Ready without
    publishNotReadyAddresses): the others say it is not among the Service's addresses, pod 2
    says its own name is NXDOMAIN; once published, all pass."""
    job = Job(fault_dns, 3)
    job.publish(0, 1)

    async with anyio.create_task_group() as tg:
        pods = [job.start(tg, i) for i in range(3)]
        lines = [
            (await pods[0].progress_with(f"{JOB}-2 (", "not among the 2 addresses")).message,
            (await pods[2].progress_with(f"{JOB}-2 (", "NXDOMAIN")).message,
        ]
        assert not any(p.done.is_set() for p in pods)
        job.publish(2)
        await all_done(pods)
    assert released(pods), [p.error for p in pods]
    record(tries=fault_dns.queries(job.fqdn(2)), progress_line=lines[0])


# --- bursts: the first K answers fail, then DNS works ---------------------------------------------
@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("fault", "count", "outcome"),
    [
        pytest.param("servfail", 12, "SERVFAIL", id="servfail-x12"),
        pytest.param("refused", 12, "REFUSED", id="refused-x12"),
        pytest.param("silence", 6, "dropped", id="silence-x6"),
    ],
)
@pytest.mark.asyncio
async def test_a_burst_of_failed_answers_for_every_name_is_survived(
    fault_dns: FaultDNS, record: Record, fault: Mode, count: int, outcome: str
) -> None:
    """The first K queries (any name) fail; all three pods still pass the barrier."""
    job = Job(fault_dns, 3)
    job.publish()
    fault_dns.fault(fault, count=count)
    started = time.monotonic()
    pods = await _run(job)
    took = time.monotonic() - started
    assert released(pods), [p.error for p in pods]
    assert sum(q.outcome == outcome for q in fault_dns.log) == count
    for pod in pods:  # each pod reached each peer at the peer's own address
        assert [_reached_address(pod, i) for i in range(3)] == [job.address(i) for i in range(3)]
    record(tries=count, barrier_s=round(took, 2))


# --- truncation, slowness -------------------------------------------------------------------------
@pytest.mark.timeout(30)
@pytest.mark.asyncio
async def test_truncated_udp_answers_are_fetched_again_over_tcp(
    fault_dns: FaultDNS, record: Record
) -> None:
    """Every UDP answer comes back truncated (TC bit, no records): the agent asks again over TCP
    and the barrier passes."""
    job = Job(fault_dns, 3)
    job.publish()
    fault_dns.fault("truncate")
    pods = await _run(job)
    assert released(pods), [p.error for p in pods]
    for name in [job.service, *map(job.fqdn, range(3))]:
        assert "TC" in fault_dns.outcomes(name)
        assert fault_dns.queries(name, "A", "tcp") >= 1
    record(tries=fault_dns.queries(transport="tcp"))


@pytest.mark.timeout(30)
@pytest.mark.asyncio
async def test_peers_a_cut_short_service_answer_leaves_out_are_asked_for_by_name(
    fault_dns: FaultDNS, record: Record
) -> None:
    """A Service of more pods than a 64 KiB answer holds: DNS lists some addresses and sets TC
    even over TCP. Here it lists pod 0 only; pods 1 and 2, never listed, are found by name."""
    job = Job(fault_dns, 3)
    job.publish()
    fault_dns.fault("cut", job.service, addresses=[job.address(0)])
    pods = await _run(job)
    assert released(pods), [p.error for p in pods]
    for pod in pods:
        assert [_reached_address(pod, i) for i in range(3)] == [job.address(i) for i in range(3)]
        assert any(e.kind == "truncated" for e in pod.events), pod.messages()
    assert set(fault_dns.outcomes(job.service)) == {f"NOERROR {job.address(0)}"}
    record(by_name=sum(fault_dns.queries(job.fqdn(i), "A") for i in (1, 2)))


@pytest.mark.timeout(30)
@pytest.mark.asyncio
async def test_slow_answers_delay_the_barrier_but_do_not_break_it(
    fault_dns: FaultDNS, record: Record
) -> None:
    """Every answer comes 0.5 s late: the barrier passes, about that much later."""
    job = Job(fault_dns, 3)
    job.publish()
    fault_dns.fault("delay", delay=0.5)
    started = time.monotonic()
    pods = await _run(job)
    took = time.monotonic() - started
    assert released(pods), [p.error for p in pods]
    assert 0.5 <= took < 10
    record(tries=fault_dns.queries(), barrier_s=round(took, 2))


@pytest.mark.timeout(90)
@pytest.mark.asyncio
async def test_answers_later_than_the_agent_waits_are_timeouts_then_retried(
    fault_dns: FaultDNS, record: Record
) -> None:
    """The first answers come after the agent's 5 s wait for one (``dns_answer_wait``; one
    later than ``dns_timeout`` but within it is used: tests/faults/test_late_answers.py); it
    reports a DNS timeout, asks again, and the barrier passes."""
    job = Job(fault_dns, 2)
    job.publish()
    late = DEFAULT_TIMING.dns_answer_wait + 0.5
    fault_dns.fault("delay", delay=late, count=10)  # about two rounds of every pod's queries

    async with anyio.create_task_group() as tg:
        pods = [job.start(tg, i) for i in range(2)]
        await pods[0].progress_with(f"{JOB}-1 (DNS timeout)", timeout=45)
        await all_done(pods)
    assert released(pods), [p.error for p in pods]
    record(tries=10)


# --- records that lie: a replaced pod, a flapping name, two addresses -----------------------------
STRANGER_UID = "uid-of-the-previous-run"


def _stranger(dns: FaultDNS, job: Job, index: int, host: int) -> tuple[Config, str]:
    """A pod of another run of the job (same name, another uid) on 127.0.<net>.<host>; it asks
    an empty DNS, so it keeps listening and never joins anything."""
    address = f"127.0.{job.net}.{host}"
    other = Job(dns, job.peers, uid=STRANGER_UID, net=job.net, port=job.port)
    return other.config(index, listen=address), address


#: how a missing peer's reason names the one listed address that does not answer as a peer
_ONE = "the one address of the Service not answering as a peer"


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("old_pod", "reason"),
    [
        pytest.param("stranger", "identity mismatch: job uid", id="old-address-is-another-pod"),
        pytest.param("gone", "connect to port", id="old-address-is-empty"),
    ],
)
@pytest.mark.asyncio
async def test_a_stale_address_of_a_replaced_pod(
    fault_dns: FaultDNS, record: Record, old_pod: str, reason: str
) -> None:
    """Pod 1 was replaced; DNS still gives its old address, where another job's pod (same name,
    another uid) or nothing listens. The agents say so, never count it, and pass the barrier
    once DNS gives the new address."""
    job = Job(fault_dns, 3, uid="uid-of-this-run")
    job.publish()
    with FaultDNS() as empty:
        config, old = _stranger(empty, job, 1, host=9)
        # Both of pod 1's records still have the old address: its own name and the Service's.
        fault_dns.fault("stale", job.fqdn(1), addresses=[old])
        stale_service = [job.address(0), old, job.address(2)]
        fault_dns.fault("stale", job.service, addresses=stale_service)

        async with anyio.create_task_group() as tg:
            if old_pod == "stranger":
                tg.start_soon(_serve_forever, config)
            pods = [job.start(tg, i) for i in range(3)]
            lines = [
                (await pods[0].progress_with(f"at {old} ({_ONE}): {reason}")).message,
                (await pods[1].progress_with(f"{JOB}-1 ({old}: {reason}")).message,
            ]
            assert not any(p.done.is_set() for p in pods)
            fault_dns.clear(job.fqdn(1))  # the records now have the new address
            fault_dns.clear(job.service)
            await all_done(pods)
            tg.cancel_scope.cancel()
    assert released(pods), [p.error for p in pods]
    for pod in pods:
        assert _reached_address(pod, 1) == job.address(1)
        assert pod.outcome is not None and old not in pod.outcome.peers[1].addresses
    record(stale_answers=sum(f"{old}" in q.outcome for q in fault_dns.log), progress_line=lines[0])


async def _serve_forever(config: Config) -> None:
    from agent.io.runner import serve_and_wait

    await serve_and_wait(config, report=lambda e: None, deps=agent_deps())


@pytest.mark.timeout(30)
@pytest.mark.asyncio
async def test_names_that_flap_between_present_and_nxdomain(
    fault_dns: FaultDNS, record: Record
) -> None:
    """Every name answers present, NXDOMAIN, present, … (a cache expiring mid-rollout): the
    barrier passes, including the members' sessions to the coordinator, which re-resolve."""
    job = Job(fault_dns, 3)
    job.publish()
    fault_dns.fault("flap", period=1)
    pods = await _run(job)
    assert released(pods), [p.error for p in pods]
    outcomes = [o for i in range(3) for o in fault_dns.outcomes(job.fqdn(i))]
    assert "NXDOMAIN" in outcomes and any(o.startswith("NOERROR 127.") for o in outcomes)
    record(tries=len(outcomes), nxdomain=outcomes.count("NXDOMAIN"))


@pytest.mark.timeout(30)
@pytest.mark.parametrize("wrong_first", [True, False], ids=["wrong-pod-first", "right-pod-first"])
@pytest.mark.asyncio
async def test_two_addresses_for_one_hostname(
    fault_dns: FaultDNS, record: Record, wrong_first: bool
) -> None:
    """Pod 1's name has two addresses, one of them another job's pod with the same name: every
    agent reaches pod 1 at its own address, whichever order DNS gives, and the barrier passes."""
    job = Job(fault_dns, 3, uid="uid-of-this-run")
    job.publish()
    with FaultDNS() as empty:
        config, wrong = _stranger(empty, job, 1, host=9)
        both = [wrong, job.address(1)] if wrong_first else [job.address(1), wrong]
        fault_dns.set(job.fqdn(1), *both)
        fault_dns.set(job.service, job.address(0), *both, job.address(2))

        async with anyio.create_task_group() as tg:
            tg.start_soon(_serve_forever, config)
            pods = [job.start(tg, i) for i in range(3)]
            await all_done(pods)
            tg.cancel_scope.cancel()
    assert released(pods), [p.error for p in pods]
    assert [_reached_address(p, 1) for p in pods] == [job.address(1)] * 3
    record(tries=fault_dns.queries(job.fqdn(1)))


@pytest.mark.timeout(30)
@pytest.mark.asyncio
async def test_the_wrong_pod_address_is_not_written_to_the_peers_list(fault_dns: FaultDNS) -> None:
    """Pod 1's own name has two addresses, the first another job's pod: pod 1's peers list (the
    peers JSON its workload reads) names only the address that answered as pod 1."""
    job = Job(fault_dns, 2, uid="uid-of-this-run")
    job.publish()
    with FaultDNS() as empty:
        config, wrong = _stranger(empty, job, 1, host=9)
        fault_dns.set(job.fqdn(1), wrong, job.address(1))
        # The Service's first answers lag (the wrong pod instead of pod 1): pod 1 finds itself
        # by its own name, as it does when its record is new.
        fault_dns.fault("stale", job.service, addresses=[job.address(0), wrong], count=2)

        async with anyio.create_task_group() as tg:
            tg.start_soon(_serve_forever, config)
            pods = [job.start(tg, i) for i in range(2)]
            await all_done(pods)
            tg.cancel_scope.cancel()
    assert released(pods), [p.error for p in pods]
    for pod in pods:
        assert pod.outcome is not None
        assert pod.outcome.peers[1].addresses == (job.address(1),)


# --- what the user reads when the fault outlasts the deadline -------------------------------------
@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("fault", "reason", "timeout"),
    [
        pytest.param("servfail", "SERVFAIL", "1s", id="servfail"),
        pytest.param("refused", "REFUSED", "1s", id="refused"),
        # past the 5 s a query waits for its answer (``dns_answer_wait``)
        pytest.param("silence", "DNS timeout", "8s", id="silence"),
    ],
)
def test_the_exit_3_message_names_the_dns_fault(
    fault_dns: FaultDNS,
    processes: list[AgentProcess],
    record: Record,
    fault: Mode,
    reason: str,
    timeout: str,
) -> None:
    """Cluster DNS fails until the deadline: the agent exits 3 and its message says
    'missing <peer>: <fault>', and its hint blames DNS, not the network."""
    job = Job(fault_dns, 2)
    job.publish()
    fault_dns.fault(fault)
    agent = AgentProcess(agent_argv(job, "wait", 0, "--timeout", timeout))
    processes.append(agent)
    assert agent.finish() == 3, agent.stderr
    assert f"missing {job.fqdn(1)}: {reason}" in agent.stderr
    assert "peers resolve but do not answer" not in agent.stderr
    assert f"hint: cluster DNS itself is failing ({reason})" in agent.stderr
    record(message=next(line for line in agent.stderr.splitlines() if "missing" in line))
