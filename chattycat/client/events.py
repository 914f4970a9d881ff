"""What a :class:`~chattycat.client.client.Client` reports: its states and its events.

Besides the server's frames it passes on (``Message``, ``Joined``, ...), a
client emits the connection events defined here. ``chattycat.client.client``
re-exports every name; import them from there.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, auto

from chattycat.protocol.messages import (
    Error,
    History,
    Joined,
    Message,
    Notice,
    Parted,
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
    "Reconnecting",
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


ClientEvent = (
    Connected | ConnectionLost | Reconnecting | Failed | Closed
    | Message | Whisper | Joined | Parted | Roster | History | RoomList | Renamed | Notice | Error
)
