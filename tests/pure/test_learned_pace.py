"""An address learnt from a peer (past a cut answer) whose pod does not answer yet is probed
again less and less often, up to ``learned_retry_cap``, and only while its peer is a target not
reached: a peer that is not a target is never counted reached, so probing it again buys nothing
(pure, simulated time)."""

from __future__ import annotations

import itertools

import pytest

from agent.core.causes import Cause, Failure
from agent.core.discovery import ByService
from agent.core.effects import ProbeAddress
from agent.core.reach import Reach
from agent.core.timing import DEFAULT_TIMING

pytestmark = pytest.mark.timeout(10)

REFUSED = Failure("refused", Cause.CONNECT_REFUSED)


def _probes(index: int, until: float) -> list[float]:
    """When pod 0 of 1,000 (targets 0, 5 and 9) probes the address it learnt for ``index`` at
    0 s, nobody answering there, over ``until`` seconds polled every 0.5 s."""
    rand = lambda: 0.999  # noqa: E731
    reach = Reach(1000, now=0.0, rand=rand, scheduled={0}, targets=(0, 5, 9))
    d = ByService(reach, now=0.0, rand=rand, timing=DEFAULT_TIMING, me=0, probes_sweep=False)
    address = f"10.0.0.{index}"
    at: list[float] = []
    out = d.learn(index, address, 0.0)
    now = 0.0
    while now <= until:
        for effect in out:
            if isinstance(effect, ProbeAddress) and effect.address == address:
                at.append(now)
                d.probed(address, REFUSED)  # nobody listens there yet
        now += 0.5
        out = d.take_due(now)
    return at


@pytest.mark.parametrize(
    ("index", "most", "last_gap"),
    [
        pytest.param(5, 10, 30.0, id="a-target-backs-off-to-30s"),
        pytest.param(7, 1, None, id="not-a-target-probed-once"),
    ],
)
def test_a_learnt_address_is_probed_again_less_often(
    index: int, most: int, last_gap: float | None
) -> None:
    at = _probes(index, 180.0)
    assert at[0] == 0.0 and len(at) <= most
    gaps = [b - a for a, b in itertools.pairwise(at)]
    assert gaps == sorted(gaps)
    if last_gap is not None:
        assert gaps[0] == pytest.approx(2.0, abs=0.5)  # the first retry as soon as before
        assert gaps[-1] == pytest.approx(last_gap, abs=0.5)
