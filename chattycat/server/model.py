"""What the room state machine knows: its settings, connections, users and rooms."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from enum import Enum, auto

from chattycat._version import __version__
from chattycat.protocol.flood import TokenBucket
from chattycat.protocol.messages import Message, Request, name_key
from chattycat.server.effects import ConnId, Now
from chattycat.server.sessions import secret_digest

__all__ = ["ConnState", "Connection", "Pending", "Room", "RoomsConfig", "User"]


class ConnState(Enum):
    """Life of a connection: it must say ``hello`` before anything else."""

    AWAITING_HELLO = auto()
    ACTIVE = auto()
    CLOSED = auto()


@dataclass(frozen=True, slots=True)
class RoomsConfig:
    """The server settings the state machine needs."""

    default_room: str = "lobby"
    max_frame: int = 65536
    flood_rate_per_s: float = 5.0
    flood_burst: int = 10
    heartbeat_s: float = 30.0
    handshake_timeout_s: float = 10.0
    # How long a disconnected user's session token stays good for a resume.
    session_ttl_s: float = 24 * 3600.0
    join_history: int = 50
    resume_history: int = 1000
    idempotence_window: int = 1000
    server_name: str = f"chattycat/{__version__}"


@dataclass(eq=False, slots=True)
class User:
    """A signed-in user; on a takeover it moves to the new connection."""

    name: str
    color: str
    session: str
    conn: ConnId
    rooms: dict[str, None] = field(default_factory=dict)  # an ordered set
    # What the store knows the session by (a digest: the secret is never stored).
    session_key: str = ""

    def __post_init__(self) -> None:
        if not self.session_key:
            self.session_key = secret_digest(self.session)

    @property
    def key(self) -> str:
        return name_key(self.name)


# A request (or an unparsed payload) that arrived while its connection was
# waiting for the store, with the time it arrived.
Parked = tuple[Request | bytes, Now]


@dataclass(eq=False, slots=True)
class Connection:
    """What the server knows of one connection."""

    id: ConnId
    state: ConnState
    bucket: TokenBucket
    last_heard: float
    opened_at: float
    ping_sent_at: float | None = None
    user: User | None = None
    # The read this connection's current request waits for; while set, later
    # requests are parked so that they are carried out, and answered, in order.
    waiting: int | None = None
    parked: deque[Parked] = field(default_factory=deque)


@dataclass(eq=False, slots=True)
class Room:
    """A room with members; rooms without members are not kept (their counters are)."""

    name: str
    members: dict[str, User] = field(default_factory=dict)
    _conns: tuple[ConnId, ...] | None = None

    def conns(self) -> tuple[ConnId, ...]:
        """Connections of all members, cached until membership changes."""
        if self._conns is None:
            self._conns = tuple(user.conn for user in self.members.values())
        return self._conns

    def changed(self) -> None:
        self._conns = None


@dataclass(frozen=True, slots=True)
class Pending:
    """A message numbered and sent to the store, not yet committed, and who sent it."""

    message: Message
    sender: User
