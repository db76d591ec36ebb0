"""On a sparse graph the Service's rounds stop after a few answers, whole or cut
(``agent.core.rounds``): the answer only says which addresses are the Service's.

Review 11: on a sparse graph whose Service answer is whole (a Job of 257 to ~4,000 pods, one
DNS message), a waiting pod asked the Service about every 0.75 s for as long as it waited
(pod 0 of 8 with its targets refusing: 85-88 queries in 65 s); only cut answers stopped the
rounds. The complete graph probes what each answer lists, so its rounds go on.
"""

from __future__ import annotations

import pytest

from agent.core.rounds import Rounds
from agent.core.timing import DEFAULT_TIMING

pytestmark = pytest.mark.timeout(10)


def _rounds_in(rounds: Rounds, until: float, *, cut: bool) -> list[float]:
    """When each round started, answered at once, up to ``until``."""
    started: list[float] = []
    while (due := rounds.next_wakeup()) is not None and due <= until:
        assert rounds.start_due(due)
        started.append(due)
        rounds.answered(due, cut=cut)
    return started


@pytest.mark.parametrize("cut", [False, True], ids=["whole", "cut"])
def test_a_sparse_graphs_rounds_stop_after_a_few_answers(cut: bool) -> None:
    most = DEFAULT_TIMING.cut_rounds
    rounds = Rounds(now=0.0, rand=lambda: 0.5, timing=DEFAULT_TIMING, cut_most=most)
    assert len(_rounds_in(rounds, 600.0, cut=cut)) == most  # not one a second for 10 minutes


def test_a_contact_from_an_address_not_listed_asks_one_round_more() -> None:
    rounds = Rounds(now=0.0, rand=lambda: 0.5, timing=DEFAULT_TIMING, cut_most=2)
    _rounds_in(rounds, 600.0, cut=False)
    rounds.refresh(600.0)  # a pod published since may have said hello from there
    assert len(_rounds_in(rounds, 1_200.0, cut=False)) == 1


def test_a_peer_to_reach_again_starts_the_rounds_again() -> None:
    rounds = Rounds(now=0.0, rand=lambda: 0.5, timing=DEFAULT_TIMING, cut_most=2)
    _rounds_in(rounds, 600.0, cut=False)
    rounds.resume(600.0)
    assert len(_rounds_in(rounds, 1_200.0, cut=False)) == 2


def test_the_complete_graphs_rounds_go_on_over_a_whole_answer() -> None:
    """Its answers are probed: a pod published late is found by the next round."""
    rounds = Rounds(now=0.0, rand=lambda: 0.5, timing=DEFAULT_TIMING, cut_most=None)
    assert len(_rounds_in(rounds, 60.0, cut=False)) > 50
