"""The fault tier's process helper (``AgentProcess``) itself: what it says a process logged.

A ``wait`` agent logs its release and exits at once; on a loaded machine the thread that reads
its stderr can be behind the exit. ``wait_line`` gave up as soon as the process had exited,
judging lines it had not read yet, and reported a released pod as stalled (make test: "'barrier
released' not logged" by pod 2 of test_stale_coordinator's wait variant, whose stderr stopped
at "reached all 3 peers" and whose test took under 10 s of its 12 s bound).
"""

from __future__ import annotations

import threading

import pytest

from tests.faults.conftest import AgentProcess

pytestmark = pytest.mark.timeout(30)

#: a process that logs a release and exits at once, as a released ``wait`` member does
RELEASED_AND_GONE = "import sys; print('barrier released', file=sys.stderr)"


def test_a_line_logged_just_before_the_exit_counts_though_the_reader_is_behind(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    behind = threading.Event()  # the reader takes the line in a moment after the exit
    read = AgentProcess._read

    def late(self: AgentProcess) -> None:
        behind.wait(20)
        read(self)

    monkeypatch.setattr(AgentProcess, "_read", late)
    agent = AgentProcess([], python_args=["-c", RELEASED_AND_GONE])
    lag = threading.Timer(0.5, behind.set)
    try:
        assert agent.proc.wait(20) == 0
        lag.start()
        agent.wait_line("barrier released", timeout=20)
    finally:
        lag.cancel()
        behind.set()
        agent.finish()


def test_a_line_never_logged_fails_at_the_exit_and_says_so() -> None:
    agent = AgentProcess([], python_args=["-c", "import sys; print('reached', file=sys.stderr)"])
    with pytest.raises(AssertionError, match=r"(?s)exited with code 0.*reached"):
        agent.wait_line("barrier released", timeout=20)
    assert agent.finish() == 0
