"""`make demo`, what a new user runs first: the demo module run as the Makefile runs it, its
output read as the user reads it."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.harness.demo import FRAMEWORKS
from tests.harness.demorace import give_up_after
from tests.harness.fixtures import require_root
from tests.harness.install import REPO

# kubectl's shapes: a command, a "created" line, a resource name, a pod table's header
_KUBECTL_LIKE = re.compile(r"kubectl|\bcreated$|^(service|job|jobset)\S*/|^NAME +READY")
# a pod's log line from peer-agent, and its level (the demo indents the pods' logs)
_AGENT_LINE = re.compile(r"^ +peer-agent: (debug|info|warning|error): ", re.M)


def _demo(*args: str) -> str:
    require_root()
    proc = subprocess.run(
        [sys.executable, "-m", "tests.harness.demo", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=150,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def _assert_quiet(out: str) -> None:
    """A demo that succeeds is all well: its pods' agents log no warning and no error (a late
    pod's contacts before DNS lists it are normal, said at debug level, not shown)."""
    levels = _AGENT_LINE.findall(out)
    assert "info" in levels, out  # the agents' logs are there, in the form the pattern reads
    loud = [line for line in out.splitlines() if re.match(r" +peer-agent: (warning|error):", line)]
    assert not loud, "\n".join(loud)


def _assert_marked_as_the_box(out: str) -> None:
    """Nothing in kubectl's shape is printed unless marked as the box's own; pods' logs (the
    indented lines) are their real output."""
    for line in out.splitlines():
        if not line.startswith(("[box] ", "    ")):
            assert not _KUBECTL_LIKE.search(line), line


@pytest.mark.timeout(200)
def test_seed_demo_shows_the_stranded_pod_then_peer_agent_completing() -> None:
    out = _demo("--seed")
    without, _, behind_agent = out.partition("== 2/2 with peer-agent")
    bound = give_up_after(2.0)
    # The seed's loop: pods 0 and 1 done, pod 2 still retrying pod 0's name, the Job not
    # complete when the demo stops waiting, and the demo says it stopped.
    assert f"kubectl wait --for=condition=complete job/example-job --timeout={bound:g}s" in without
    assert "[box] error: timed out waiting for the condition on job/example-job" in without
    for index, state in ((0, "0/1 +Completed"), (1, "0/1 +Completed"), (2, "1/1 +Running")):
        assert re.search(rf"^\[box\] example-job-{index}-\w+ +{state}", without, re.M), without
    assert "cluster DNS answers NXDOMAIN for example-job-0.headless-svc." in without
    prose = " ".join(without.split())  # the demo wraps its sentences
    stranded = re.search(r"(example-job-2-\w+) is stranded", prose)
    assert stranded, without
    assert f"The demo gave up waiting after {bound:.0f}s" in prose
    late_log = without.split(f"[box] kubectl logs {stranded[1]}\n")[1].split("[box]")[0]
    assert late_log.count("Failed to ping pod example-job-0.headless-svc") >= 5, late_log
    assert "Successfully pinged" not in late_log, late_log
    # The same Job, pod 2 as late, behind peer-agent: complete, every pod through the barrier.
    assert re.search(r"^\[box\] job/example-job Complete after", behind_agent, re.M)
    assert behind_agent.count("reached all of example-job-0.example-peers") == 3
    assert f"the Job never completes: {stranded[1]} stranded" in behind_agent
    assert re.search(r"^with peer-agent: +the Job completed after", behind_agent, re.M)
    _assert_marked_as_the_box(out)
    _assert_quiet(behind_agent)


@pytest.mark.timeout(200)
def test_jobset_demo_applies_the_jobset_not_jobs_nobody_applied() -> None:
    out = _demo("--topology", "jobset")
    assert "[box] jobset.jobset.x-k8s.io/train created" in out
    assert "job.batch/" not in out  # JobSet's child Jobs are its controller's, not applied
    made = "playing its controller, the box made service/train, job/train-driver-0"
    assert made in out
    assert out.rstrip().endswith("every barrier passed")
    _assert_marked_as_the_box(out)
    _assert_quiet(out)


@pytest.mark.timeout(200)
@pytest.mark.parametrize("topology", sorted(set(FRAMEWORKS) - {"jobset"}))
def test_a_framework_demo_with_its_late_pod_logs_no_warning(topology: str) -> None:
    """Every other framework's example, its last pod 3 s late (jobset's is above): the others'
    agents hear from it before DNS lists it, which is normal, so nothing is said above info."""
    out = _demo("--topology", topology)
    assert out.rstrip().endswith("every barrier passed"), out
    _assert_quiet(out)
