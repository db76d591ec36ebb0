"""A member's session a coordinator holds, unread, while DNS has not vouched for its address
(``agent.core.admission``): its hello and the state its messages imply. Pure."""

from __future__ import annotations

from agent.core.inputs import Opened, Received
from agent.protocol.wire import Ack, Arrive, Message, Vouch

__all__ = ["HeldSession"]


class HeldSession:
    """A member's session from an address not vouched for: its hello and the state its messages
    imply (its latest arrival counts). A plain class: a dataclass cost every start 1.9M instr."""

    __slots__ = ("acked", "answered", "arrived", "opened", "vouch")

    def __init__(self, opened: Opened) -> None:
        self.opened = opened
        self.answered = False  # its claimed index's name answered since, not vouching for it
        self.arrived: Arrive | None = None  # its latest Arrive
        self.acked = False
        self.vouch: Vouch | None = None  # its latest report of its ring neighbour (``vouching``)

    @property
    def index(self) -> int:
        return self.opened.hello.identity.index

    def absorb(self, message: Message) -> bool:
        """False for a message a member may not send (the session would be closed for it)."""
        if isinstance(message, Arrive):
            self.arrived = message
        elif isinstance(message, Ack):
            self.acked = True
        elif isinstance(message, Vouch):
            self.vouch = message
        else:
            return False
        return True

    def replay(self) -> list[Received]:
        """What it said, as the coordinator is to hear it once the session counts."""
        said = (self.vouch, self.arrived, Ack() if self.acked else None)
        return [Received(self.opened.conn, message) for message in said if message is not None]
