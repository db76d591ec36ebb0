"""A coordinator keeps, of each member index, its newest instance's session (pure core).

Found by the simulator's checker: ``Coordinator.joined`` kept the newest *connection*, so a
replaced pod's late redial (its handshake completing after its replacement's, or from a
process already dead) closed the replacement's live session. The release still came, after the
replacement noticed, redialled and arrived again; with two live instances of one index (an old
pod on a node cut off from the API server) each redial closed the other's. ``Reach`` never
lets an older instance replace a newer one; the coordinator's sessions now agree with it.
"""

from __future__ import annotations

import pytest

from agent.core.effects import Close, Released
from agent.core.outcome import ReleaseKind
from agent.core.roles import Coordinator
from agent.protocol.instance import instance_id
from agent.protocol.wire import Arrive, Hello, Identity, Role

pytestmark = pytest.mark.timeout(10)

OLD, NEW = instance_id(1, 1), instance_id(2, 1)  # member 1 before and after its replacement


def _hello(instance: str) -> Hello:
    return Hello(Identity("job", "u", 1, 2, 1, instance), Role.MEMBER, "n")


@pytest.mark.parametrize(
    "joins, closed, kept",
    [
        pytest.param([(7, NEW), (9, OLD)], 9, 7, id="an-old-instances-late-redial-is-closed"),
        pytest.param([(9, NEW), (7, OLD)], 7, 9, id="an-old-connection-completing-late-too"),
        pytest.param([(7, OLD), (9, NEW)], 7, 9, id="the-replacement-takes-over"),
        pytest.param([(9, OLD), (7, NEW)], 9, 7, id="the-replacement-whose-dial-was-older"),
        pytest.param([(7, NEW), (9, NEW)], 7, 9, id="one-instance-keeps-its-newest-connection"),
    ],
)
def test_a_member_index_keeps_its_newest_instances_session(
    joins: list[tuple[int, str]], closed: int, kept: int
) -> None:
    coordinator = Coordinator(Identity("job", "u", 0, 2, 1, instance_id(1, 0)))
    actions = [a for conn, who in joins for a in coordinator.joined(conn, _hello(who), 0.0)]
    assert actions == [Close(closed)]
    coordinator.closed(closed, 0.1)  # its loss costs the kept session nothing
    coordinator.reached_all("view", 0.1)
    assert Released(ReleaseKind.DECIDED) in coordinator.received(kept, Arrive("view"), 0.2)
    assert coordinator.received(closed, Arrive("view"), 0.3) == [Close(closed)]
