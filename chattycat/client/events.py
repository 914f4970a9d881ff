"""What a :class:`~chattycat.client.client.Client` reports: its states and its events.

Besides the server's frames it passes on (``Message``, ``Joined``, ...), a
client emits the connection events defined here and two kinds of state
report: :class:`SessionChanged`, an immutable snapshot of what the session
knows (the user's name, the rooms, their members), and :class:`PendingChanged`,
the number of messages still waiting for the server. The session is the one
owner of those facts; a front end renders the latest snapshot and keeps no
copy of its own. Snapshots are frozen all the way down, so the desktop client
can hand them from the loop thread to the Tk thread as they are.

A snapshot follows the event that changed it (``Renamed``, then the
``SessionChanged`` with the new name), so an event is described against the
state from just before it. ``chattycat.client.client`` re-exports every name.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, auto

from chattycat.protocol.messages import (
    Error,
    History,
    Joined,
    Member,
    Message,
    Notice,
    Parted,
    Registered,
    Renamed,
    RoomList,
    Roster,
    Welcome,
    Whisper,
)

__all__ = [
    "ClientEvent",
    "ClientState",
    "Closed",
    "Connected",
    "ConnectionLost",
    "Failed",
    "PendingChanged",
    "Reconnecting",
    "RoomState",
    "SessionChanged",
    "Synced",
]


class ClientState(Enum):
    """Where the client is in its life; see ``Client.state``."""

    IDLE = auto()  # created, start() not called yet
    CONNECTING = auto()  # TCP/TLS connect or hello under way
    ONLINE = auto()  # welcome received
    WAITING_TO_RETRY = auto()  # connection lost; a retry is scheduled
    CLOSED = auto()  # quit(), close() or gave up: final


@dataclass(frozen=True, slots=True)
class Connected:
    """A ``welcome`` arrived; ``resumed`` when the hello resumed earlier rooms."""

    welcome: Welcome
    resumed: bool


@dataclass(frozen=True, slots=True)
class ConnectionLost:
    """The connection (or a retry) failed; the next attempt starts in ``retry_in_s``."""

    reason: str
    retry_in_s: float


@dataclass(frozen=True, slots=True)
class Reconnecting:
    """Retry number ``attempt`` (1, 2, ...) has started."""

    attempt: int


@dataclass(frozen=True, slots=True)
class Failed:
    """The client gave up (start-up connect failure, hello rejected); it is closed."""

    reason: str
    code: str | None


@dataclass(frozen=True, slots=True)
class Closed:
    """The client is closed after ``quit()`` or ``close()``."""


@dataclass(frozen=True, slots=True)
class RoomState:
    """One room the user is in, or on the way into, as the session knows it."""

    room: str
    joined: bool  # the server confirmed it; False while the join is on its way
    members: tuple[Member, ...]  # sorted by name case-insensitively; () until known
    oldest_seq: int | None  # the oldest message delivered (None: none yet)


@dataclass(frozen=True, slots=True)
class SessionChanged:
    """What the session knows now: the user's name and rooms (a snapshot; see above).

    ``rooms`` are the rooms the user is in or joining, in join order; a room
    being left is gone from it at once.
    """

    me: str
    rooms: tuple[RoomState, ...] = ()

    @property
    def room_names(self) -> tuple[str, ...]:
        """The rooms, in join order."""
        return tuple(state.room for state in self.rooms)

    def room(self, room: str) -> RoomState | None:
        """The state of ``room``, or None when the user is not in it."""
        return next((state for state in self.rooms if state.room == room), None)

    def members(self, room: str) -> tuple[Member, ...]:
        """Members of ``room`` (empty when not in it or not known yet)."""
        state = self.room(room)
        return () if state is None else state.members


@dataclass(frozen=True, slots=True)
class PendingChanged:
    """The number of says and whispers not yet acknowledged by the server changed."""

    pending: int


@dataclass(frozen=True, slots=True)
class Synced:
    """The server has handled every request sent before ``Client.sync()`` returned ``token``."""

    token: str


ClientEvent = (
    Connected | ConnectionLost | Reconnecting | Failed | Closed
    | SessionChanged | PendingChanged | Synced
    | Message | Whisper | Joined | Parted | Roster | History | RoomList | Renamed | Notice | Error
    | Registered
)
