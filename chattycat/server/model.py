"""What the room state machine knows: its settings, connections, users and rooms."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum, auto

from chattycat._version import __version__
from chattycat.protocol.flood import TokenBucket
from chattycat.protocol.messages import Message, Request, name_key
from chattycat.server.accounts import AccountMode
from chattycat.server.effects import ConnId, Now
from chattycat.server.sessions import secret_digest

__all__ = ["REMOTE", "ConnState", "Connection", "Pending", "Room", "RoomsConfig", "User"]

#: The connection of a user held by another node of a cluster: it has none here.
REMOTE: ConnId = -1


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
    # Abuse limits (docs/security.md has the reasoning behind each default).
    max_rooms_per_user: int = 100
    # Parked sessions kept at most; past it the longest-idle one goes first.
    max_sessions: int = 10_000
    # ping/pong are exempt from flood control (PROTOCOL 8) but not free: their
    # own generous bucket; a ping over it is dropped unanswered.
    ping_rate_per_s: float = 20.0
    ping_burst: int = 100
    # Frames refused before a successful hello (bad hellos, other types) that
    # a connection may send; the next one closes it.
    max_failed_hellos: int = 5
    # Requests held while the connection waits for the store; more are refused.
    max_parked_requests: int = 64
    # How long a disconnected user's name waits for its own session before
    # anyone else may take it (PROTOCOL 7); 0: free at once.
    name_grace_s: float = 120.0
    # Accounts (PROTOCOL 10): open, required (operator-added only) or off.
    accounts: AccountMode = AccountMode.OPEN
    # A shared secret every hello must carry; None: no server password.
    server_password: str | None = field(default=None, repr=False)


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
    # The registered name this session proved it owns (password or resumed
    # session), which it may take back with nick; None: no account.
    account: str | None = None
    # In a cluster, the node holding a user of another node ("" for this node's own).
    node: str = ""

    def __post_init__(self) -> None:
        if not self.session_key:
            self.session_key = secret_digest(self.session)

    @property
    def key(self) -> str:
        return name_key(self.name)


# A request (or an unparsed payload) that arrived while its connection was
# waiting for the store, with the time it arrived.
Parked = tuple[Request | bytes, Now]


class ParkedQueue(list[Parked]):
    """A connection's parked requests: a list, as most connections never park one
    and an empty list costs a tenth of an empty deque; it stays short (the
    machine bounds it), so taking from the front is cheap."""

    __slots__ = ()

    def popleft(self) -> Parked:
        """The oldest parked request."""
        return self.pop(0)


@dataclass(eq=False, slots=True)
class Connection:
    """What the server knows of one connection."""

    id: ConnId
    state: ConnState
    bucket: TokenBucket
    last_heard: float
    opened_at: float
    ping_bucket: TokenBucket
    ping_sent_at: float | None = None
    user: User | None = None
    # The read this connection's current request waits for; while set, later
    # requests are parked so that they are carried out, and answered, in order.
    waiting: int | None = None
    parked: ParkedQueue = field(default_factory=lambda: ParkedQueue())
    failed_hellos: int = 0  # frames refused before welcome
    address: str = ""  # the peer's address key (IPv6: its /64), for auth delays


@dataclass(eq=False, slots=True)
class Room:
    """A room with members; rooms without members are not kept (their counters are)."""

    name: str
    members: dict[str, User] = field(default_factory=dict)
    _conns: tuple[ConnId, ...] | None = None

    def conns(self) -> tuple[ConnId, ...]:
        """Connections of all members, cached until membership changes."""
        if self._conns is None:
            # Members held by another node of a cluster are reached through it.
            self._conns = tuple(user.conn for user in self.members.values()
                                if user.conn != REMOTE)
        return self._conns

    def changed(self) -> None:
        self._conns = None


@dataclass(frozen=True, slots=True)
class Pending:
    """A message numbered and sent to the store, not yet committed, and who sent it."""

    message: Message
    sender: User
