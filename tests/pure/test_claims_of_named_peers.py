"""What a hello from an address DNS does not vouch for costs DNS when it claims a peer this pod
attempts by name (outside review 9): on a sparse graph every member of a group coordinator's
group is such a peer, and past a cut Service answer its address is not listed.

Each such hello nudged the attempt (due at once) and ended the reuse of the addresses that
refused (asking DNS again): one lookup of the claimed name a hello, so an outsider set the
coordinator's rate of queries. A claim is checked at the pace of every claim instead
(``agent.core.recheck``: at once, then 2, 4, 8 s apart, one at a time per claimed index), and
its check is what nudges the attempt. Driven through the pure Agent on a hand-held clock.
"""

from __future__ import annotations

import pytest

from agent.config.parse import build_config
from agent.core.agent import Agent
from agent.core.causes import Cause, Failure
from agent.core.effects import Attempt, Effect
from agent.core.inputs import Attempted, Contacted, Unreached
from agent.protocol.instance import instance_id
from agent.protocol.wire import Hello, Identity, Role
from agent.topology.podfiles import PodFacts

pytestmark = pytest.mark.timeout(20)

PEERS, ME, CLAIMED = 8, 3, 4  # groups of 3: pod 3 coordinates pods 4 and 5
WHERE = "10.0.0.5"  # what DNS gives for pod 4's name; its agent has not started
OUTSIDER = "10.0.9.50"
REFUSED = Unreached(Failure("connect to port 29300: refused", Cause.CONNECT_REFUSED))


def _coordinator() -> Agent:
    values = {"reach": "sparse", "reach_degree": "4", "timeout": "0"}
    config = build_config(
        "wait",
        {"peers": str(PEERS), "index": str(ME), "service": "svc", "namespace": "ns", **values},
        PodFacts(hostname=f"job-{ME}"),
    )
    me = Identity("job", "", ME, PEERS, 29300, f"{ME:016x}")
    return Agent(config, me=me, now=0.0, rand=lambda: 0.5)


def _asked(effects: list[Effect]) -> int:
    """Attempts of the claimed pod that ask DNS for its name (no addresses to reuse)."""
    asks = [e for e in effects if isinstance(e, Attempt) and e.index == CLAIMED]
    return sum(1 for e in asks if not e.addresses)


def _run(agent: Agent, effects: list[Effect], now: float, until: float) -> tuple[int, float]:
    """Polls at every wake-up up to ``until``, each attempt of the claimed pod refused where DNS
    gives it: how many asked DNS, and the time reached."""
    asked = 0
    while True:
        asked += _asked(effects)
        for e in effects:
            if isinstance(e, Attempt) and e.index == CLAIMED:
                effects = agent.handle(Attempted(CLAIMED, REFUSED, refused_at=(WHERE,)), now)
                break
        else:
            if (at := agent.next_wakeup()) > until:
                return asked, now
            now = max(now, at)
            effects = agent.poll(now)


def test_a_group_coordinator_asks_a_claimed_members_name_at_the_claims_pace() -> None:
    """200 hellos claiming pod 4 from an unlisted address, 30 ms apart (6 s): the name may be
    asked at the start, at the claim's checks (at once, 2, 6 s) and where the reuse of the
    refused address ends (5 s), not once a hello (201 before)."""
    agent = _coordinator()
    assert agent.reach.is_scheduled(CLAIMED)  # a member of its group, asked for by name
    asked, now = _run(agent, agent.begin(0.0), 0.0, 1.0)
    assert asked == 1
    for k in range(200):
        theirs = Identity("job", "", CLAIMED, PEERS, 29300, instance_id(2_000_000_000 + k, k + 1))
        effects = agent.handle(Contacted(Hello(theirs, Role.MEMBER, "n"), OUTSIDER), now)
        more, now = _run(agent, effects, now, now + 0.03)
        asked += more
        now += 0.03
    assert asked <= 6, asked
