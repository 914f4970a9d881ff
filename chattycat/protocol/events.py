"""Frames a server sends (PROTOCOL 3-7).

Events are checked exactly as strictly as a client reads them, which is by
JSON type alone (a string, a count, a number): a client stays usable against a
server that stretches the naming rules, which are the server's to enforce on
requests. A frame the server builds wrongly still fails where it is built.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import ClassVar

from chattycat.errors import ProtocolError, Ref
from chattycat.protocol.codec import PROTOCOL_VERSION, REF, Event
from chattycat.protocol.fields import (
    COUNT,
    FLAG,
    NUMBER,
    OPTIONAL_STRING,
    STRING,
    WireObject,
    list_of,
    wire,
    wire_codec,
)

__all__ = [
    "Error",
    "History",
    "Joined",
    "Member",
    "Message",
    "Notice",
    "Parted",
    "Registered",
    "Renamed",
    "RoomInfo",
    "RoomList",
    "Roster",
    "Welcome",
    "Whisper",
]


@wire_codec
@dataclass(frozen=True, slots=True)
class Welcome(Event):
    """The server's answer to a successful :class:`Hello`."""

    TYPE: ClassVar[str] = "welcome"
    # The order of PROTOCOL 3's example, which version 0.1 wrote.
    WIRE_ORDER: ClassVar[tuple[str, ...]] = (
        "name", "color", "protocol", "server", "session", "max_frame", "heartbeat", "ref",
    )  # fmt: skip
    name: str = field(metadata=wire(STRING))
    color: str = field(metadata=wire(STRING))
    session: str = field(metadata=wire(STRING))
    server: str = field(metadata=wire(STRING))
    max_frame: int = field(metadata=wire(COUNT))
    heartbeat: float = field(metadata=wire(NUMBER))
    protocol: int = field(default=PROTOCOL_VERSION, metadata=wire(COUNT))
    ref: Ref = field(default=None, metadata=wire(REF))


@wire_codec
@dataclass(frozen=True, slots=True)
class Message(Event):
    """A stored chat message of a room; the sender's copy is its acknowledgement."""

    TYPE: ClassVar[str] = "message"
    room: str = field(metadata=wire(STRING))
    seq: int = field(metadata=wire(COUNT))
    sender: str = field(metadata=wire(STRING, "from"))  # "from" is a Python keyword
    color: str = field(metadata=wire(STRING))
    text: str = field(metadata=wire(STRING))
    ts: float = field(metadata=wire(NUMBER))
    id: str | None = field(default=None, metadata=wire(OPTIONAL_STRING))
    action: bool = field(default=False, metadata=wire(FLAG))


@wire_codec
@dataclass(frozen=True, slots=True)
class Whisper(Event):
    """A private message as delivered to its sender and its recipient."""

    TYPE: ClassVar[str] = "whisper"
    sender: str = field(metadata=wire(STRING, "from"))
    to: str = field(metadata=wire(STRING))
    color: str = field(metadata=wire(STRING))
    text: str = field(metadata=wire(STRING))
    ts: float = field(metadata=wire(NUMBER))
    id: str | None = field(default=None, metadata=wire(OPTIONAL_STRING))
    action: bool = field(default=False, metadata=wire(FLAG))


@wire_codec
@dataclass(frozen=True, slots=True)
class Joined(Event):
    """Someone (possibly you) joined a room."""

    TYPE: ClassVar[str] = "joined"
    room: str = field(metadata=wire(STRING))
    name: str = field(metadata=wire(STRING))
    color: str = field(metadata=wire(STRING))
    ts: float = field(metadata=wire(NUMBER))


@wire_codec
@dataclass(frozen=True, slots=True)
class Parted(Event):
    """Someone left a room: ``reason`` is ``part``, ``disconnected`` or a quit text."""

    TYPE: ClassVar[str] = "parted"
    room: str = field(metadata=wire(STRING))
    name: str = field(metadata=wire(STRING))
    reason: str = field(metadata=wire(STRING))


@wire_codec
@dataclass(frozen=True, slots=True)
class Member(WireObject):
    """One entry of a roster."""

    name: str = field(metadata=wire(STRING))
    color: str = field(metadata=wire(STRING))


@wire_codec
@dataclass(frozen=True, slots=True)
class Roster(Event):
    """The members of a room, sorted by name case-insensitively."""

    TYPE: ClassVar[str] = "roster"
    room: str = field(metadata=wire(STRING))
    members: tuple[Member, ...] = field(metadata=wire(list_of(Member)))
    more: bool = field(default=False, metadata=wire(FLAG))
    ref: Ref = field(default=None, metadata=wire(REF))


@wire_codec
@dataclass(frozen=True, slots=True)
class History(Event):
    """Stored messages of a room, oldest first."""

    TYPE: ClassVar[str] = "history"
    room: str = field(metadata=wire(STRING))
    messages: tuple[Message, ...] = field(metadata=wire(list_of(Message)))
    more: bool = field(default=False, metadata=wire(FLAG))
    truncated: bool = field(default=False, metadata=wire(FLAG))
    ref: Ref = field(default=None, metadata=wire(REF))


@wire_codec
@dataclass(frozen=True, slots=True)
class RoomInfo(WireObject):
    """One entry of a room list."""

    room: str = field(metadata=wire(STRING))
    members: int = field(metadata=wire(COUNT))


@wire_codec
@dataclass(frozen=True, slots=True)
class RoomList(Event):
    """The rooms that have members, sorted by name."""

    TYPE: ClassVar[str] = "room_list"
    rooms: tuple[RoomInfo, ...] = field(metadata=wire(list_of(RoomInfo)))
    more: bool = field(default=False, metadata=wire(FLAG))
    ref: Ref = field(default=None, metadata=wire(REF))


@wire_codec
@dataclass(frozen=True, slots=True)
class Renamed(Event):
    """A user changed name."""

    TYPE: ClassVar[str] = "renamed"
    old: str = field(metadata=wire(STRING))
    new: str = field(metadata=wire(STRING))
    color: str = field(metadata=wire(STRING))


@wire_codec
@dataclass(frozen=True, slots=True)
class Notice(Event):
    """A server-wide announcement (``code`` ``shutdown`` before a graceful stop)."""

    TYPE: ClassVar[str] = "notice"
    code: str = field(metadata=wire(STRING))
    text: str = field(metadata=wire(STRING))


@wire_codec
@dataclass(frozen=True, slots=True)
class Error(Event):
    """An error reply; ``ref`` echoes the request it answers."""

    TYPE: ClassVar[str] = "error"
    code: str = field(metadata=wire(STRING))
    # A peer that leaves the text out still gets its code across.
    message: str = field(metadata=wire(replace(STRING, absent="")))
    ref: Ref = field(default=None, metadata=wire(REF))
    # The `id` of the say or whisper refused, so a client knows which of its
    # pending messages will never be acknowledged (an extra member: allowed).
    id: str | None = field(default=None, metadata=wire(OPTIONAL_STRING))

    @classmethod
    def from_exception(cls, exc: ProtocolError, id: str | None = None) -> Error:
        """The frame that answers a protocol error."""
        return cls(str(exc.code), exc.message, exc.ref, id)


@wire_codec
@dataclass(frozen=True, slots=True)
class Registered(Event):
    """The answer to a successful ``register``: ``name`` is now an account."""

    TYPE: ClassVar[str] = "registered"
    name: str = field(metadata=wire(STRING))
    ref: Ref = field(default=None, metadata=wire(REF))
