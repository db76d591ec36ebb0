"""``--driver selectors`` where it does not suffice runs anyio and says so (review 11).

docs/architecture.md: "`selectors` asked for where it does not suffice runs anyio, and says
so ... The debug log says which runs and why (`--log-level debug`: `driver: selectors: …`)".
``wait --probe icmp`` says ``driver: anyio: the icmp probe needs it``; ``sidecar`` (and
``run --exit-barrier``'s exit barrier, named barriers) never ask ``agent.commands.drivers``
and say nothing: a user who set ``PEER_AGENT_DRIVER=selectors`` for a sidecar cannot tell from
its log that it was ignored.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.timeout(60)

_NET = 100 + (os.getpid() + 53) % 100


@pytest.mark.parametrize("command", ["wait", "sidecar"])
def test_a_selectors_request_the_command_cannot_take_is_said(command: str) -> None:
    extra = ["--probe", "icmp"] if command == "wait" else ["--health-port", "23998"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PEER_AGENT_")}
    done = subprocess.run(
        [sys.executable, "-m", "agent", command, "--peers", "2", "--index", "0",
         "--hostname", "job-0", "--service", "svc", "--namespace", "ns",
         "--dns-server", f"127.{_NET}.31.9:53", "--listen", f"127.{_NET}.31.1",
         "--port", "23997", "--timeout", "1s", "--driver", "selectors", "--log-level", "debug",
         *extra],
        capture_output=True, text=True, env=env, timeout=30,
    )  # fmt: skip
    assert "driver: anyio" in done.stderr, done.stderr
