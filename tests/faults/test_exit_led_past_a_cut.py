"""Outside review 10, claim 2 (docs/modes.md "An exit barrier led by one pod"): with
``--exit-led-by I`` "pod I's exit barrier reaches **every** pod, as on the complete graph (a pod
that is neither its neighbour nor a coordinator would never hear of the end, its ``sshd -D``
would run on and the Job never complete)", by "one DNS query for the Service a round (not N
names) and a probe of every address it lists". Past a cut-short Service answer (a Job of more
pods than one DNS message lists, ~4,090) the Service lists only some pods. Real agent processes
on loopback; the DNS server answers every pod's own name and cuts the Service's answer to pods 0
and 1 (``tests/support/podsdns.py``).

Fixed (``agent/core/callers.py``): pod I's exit barrier starts from where each pod said hello to
its start barrier. Just before, ``--reach all`` passed already (on the complete graph the start
barrier reached every pod, and the exit barrier started from those) and ``--reach sparse``
failed: pod 2's workload ran on (its name never asked, nor vouched for by a coordinator).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.conftest import NAMESPACE, SERVICE, ZONE, AgentProcess, Job, agent_argv
from tests.support.podsdns import CutServiceDNS

pytestmark = pytest.mark.timeout(90)

PEERS, LEADER = 8, 5
#: a daemon (sshd -D): never ends by itself, ends on SIGTERM
_DAEMON = "trap 'exit 143' TERM; while :; do sleep 0.1; done"
SPARSE = ("--reach", "sparse", "--reach-degree", "4")


@pytest.fixture
def agents() -> Iterator[list[AgentProcess]]:
    """Agents stopped as a pod is (SIGTERM, forwarded to the workload), then killed."""
    started: list[AgentProcess] = []
    yield started
    for p in started:
        if p.proc.poll() is None:
            p.proc.send_signal(signal.SIGTERM)
    for p in started:
        p.finish(timeout=10)
        for _, line in p.lines:  # a workload its killed agent left behind
            if found := re.search(r"workload started \(pid (\d+)", line):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(int(found[1]), signal.SIGKILL)


@pytest.mark.parametrize("reach", ["all", "sparse"])
def test_the_leaders_end_stops_every_workload_past_a_cut_service_answer(
    agents: list[AgentProcess], reach: str, tmp_path: Path
) -> None:
    """Pods 0-7 run ``run --exit-barrier --exit-led-by 5 --exit-timeout 20s``: pod 5's
    workload ends with 7 once every workload has started, the others are daemons. Every pod
    should stop and exit 7 within the leader's exit barrier (its timeout is 20 s).

    Seen with ``--reach all``: pods 2, 3, 4 and 7 never hear of the end; their daemons run on
    25 s after the leader has exited 7 (the Job would never complete). With ``--reach sparse``
    (groups of 3, pod 5 a member of group 3): pods 2, 4 and 7 likewise; pods 0, 1, 3 and 6 time
    their exit barriers out ("identity mismatch: the start barrier, expected barrier 'exit'"
    for the pods still running), and the leader's says "example-job-2…: not in DNS: not among
    the 2 addresses of the Service": it looks for the pods where the cut answer lists them."""
    extra = SPARSE if reach == "sparse" else ()
    with CutServiceDNS(PEERS, f"{SERVICE}.{NAMESPACE}.svc.{ZONE}", ()) as dns:
        job = Job(dns, PEERS)
        job.publish()
        dns.listed = (job.address(0), job.address(1))  # a Job too big for one answer
        go = "while [ ! -e {} ]; do sleep 0.1; done; exit 7"
        flag = tmp_path / "go"
        for i in range(PEERS):
            script = go.format(flag) if i == LEADER else _DAEMON
            argv = agent_argv(job, "run", i, "--timeout", "60s", "--exit-barrier", *extra)
            argv += ["--exit-led-by", str(LEADER), "--exit-grace", "2s", "--exit-timeout", "20s"]
            argv[argv.index("--dns-server") + 1] = dns.server_for(i)
            agents.append(AgentProcess([*argv, "--", "sh", "-c", script]))
        for agent in agents:
            agent.wait_line("workload started", timeout=30)
        try:
            flag.touch()
            leader_code = agents[LEADER].finish(timeout=40)
            # every other pod stops within the leader's exit barrier or its own exit timeout
            deadline = time.monotonic() + 25
            for agent in agents:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    agent.proc.wait(max(0.0, deadline - time.monotonic()))
        finally:
            flag.unlink()
    running = [i for i, a in enumerate(agents) if a.proc.poll() is None]
    assert leader_code == 7
    assert running == [], f"workloads still running in pods {running}"
    assert [a.proc.returncode for a in agents] == [7] * PEERS
