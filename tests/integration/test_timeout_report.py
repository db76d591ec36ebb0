"""The timeout's report names, for each missing peer, its own address and its own cause: real agent
processes and a real unbound on loopback.

Several peers missing for different reasons used to read alike: the Service's answer cannot say
which listed address is which missing peer (nothing that refuses, or fails the token proof, says
its index), so every missing peer was given every such address, and the cause of none.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.conftest import DRIVERS, Agents, finish, fqdn

# The start barrier over both drivers (agent.commands.drivers)
pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.parametrize("driver", DRIVERS, indirect=True),
]


def _missing_lines(err: str) -> dict[str, str]:
    """The timeout's ``missing NAME: WHY`` lines, by peer name."""
    lines = [line.partition("  missing ")[2] for line in err.splitlines()]
    return dict(line.split(": ", 1) for line in lines if line)


def test_each_missing_peer_is_reported_with_its_own_address_and_cause(
    agents: Agents, tmp_path: Path
) -> None:
    """Pod 0 of 4: pod 1 is published but nothing listens there, pod 2 runs with another token,
    pod 3 is not published. At pod 0's timeout each line says that peer's own story, and the
    exit code is pod 2's (4: the pods do not share one token), not a blanket 3."""
    good, bad = tmp_path / "good", tmp_path / "bad"
    good.write_text("s3cret-good\n")
    bad.write_text("s3cret-bad\n")
    for secret in (good, bad):
        secret.chmod(0o400)
    for i in range(3):
        agents.publish(i)
    agents.start("wait", 2, 4, "--token-file", str(bad), "--timeout", "40s")
    pod0 = agents.start("wait", 0, 4, "--token-file", str(good), "--timeout", "4s")
    code, _, err = finish(pod0)

    lines = _missing_lines(err)
    assert set(lines) == {fqdn(1), fqdn(2), fqdn(3)}, err
    assert agents.address(1) in lines[fqdn(1)] and "refused" in lines[fqdn(1)], err
    assert agents.address(2) not in lines[fqdn(1)], err
    assert agents.address(2) in lines[fqdn(2)] and "token" in lines[fqdn(2)], err
    assert agents.address(1) not in lines[fqdn(2)], err
    assert lines[fqdn(3)] == "NXDOMAIN", err
    assert code == 4, err
    assert "the pods do not share one token" in err


def test_one_missing_peer_and_one_silent_address_are_paired_without_asking_its_name(
    agents: Agents,
) -> None:
    """Pod 0 of 3, pod 2 up, pod 1 published but nothing listens: the one missing peer is at
    the one listed address that does not answer, so its line says that address and its reason
    from the Service's answer alone. Pod 1's own name has no record here: had it been asked,
    the line would say NXDOMAIN."""
    for i in range(3):
        agents.publish(i)
    agents.dns.remove(fqdn(1))  # still among the Service's addresses
    agents.start("wait", 2, 3, "--timeout", "40s")
    code, _, err = finish(agents.start("wait", 0, 3, "--timeout", "4s"))
    assert code == 3, err
    why = _missing_lines(err)[fqdn(1)]
    assert why.startswith(f"at {agents.address(1)} "), err
    assert why.endswith("connect to port 29300: refused"), err
