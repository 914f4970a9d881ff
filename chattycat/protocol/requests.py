"""Frames a client sends (PROTOCOL 3-6), and the kinds of member only they hold.

Each request checks itself when built: ``Say("NOT A ROOM", "hi")`` raises
:class:`~chattycat.errors.LocalProtocolError`; the same member in a client's
payload makes :func:`~chattycat.protocol.messages.parse_request` raise
:class:`~chattycat.errors.RemoteProtocolError` with code ``bad_room``. These
are the rules the server enforces, so they are as strict as PROTOCOL.md.
``ping`` and ``pong`` are requests that a server sends too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar, Final

from chattycat.errors import ErrorCode
from chattycat.protocol.codec import PROTOCOL_VERSION, Request
from chattycat.protocol.fields import (
    COUNT,
    FLAG,
    MAX_WIRE_INT,
    ROOM_NAME,
    STRING,
    USER_NAME,
    JSONObject,
    Kind,
    bad,
    has_lone_surrogate,
    integer,
    is_int,
    string,
    wire,
    wire_codec,
)
from chattycat.protocol.names import is_valid_room

__all__ = [
    "DEFAULT_HISTORY_LIMIT",
    "MAX_HISTORY_LIMIT",
    "MAX_ID_CHARS",
    "MAX_TEXT_CHARS",
    "Hello",
    "HistoryQuery",
    "Join",
    "Nick",
    "Part",
    "Ping",
    "Pong",
    "Quit",
    "Register",
    "Rooms",
    "Say",
    "WhisperTo",
    "Who",
]

MAX_TEXT_CHARS = 4000
MAX_ID_CHARS = 64
MAX_HISTORY_LIMIT = 500
DEFAULT_HISTORY_LIMIT = 50
_MAX_SESSION_CHARS = 256
_MAX_TOKEN_CHARS = 256
#: A password's length in characters (PROTOCOL 10).
MIN_PASSWORD_CHARS = 8
MAX_PASSWORD_CHARS = 1024

#: The text of a say or whisper: 1-4000 characters.
TEXT: Final = string(MAX_TEXT_CHARS, non_empty=True)
#: A client-chosen message id: at most 64 characters.
MESSAGE_ID: Final = string(MAX_ID_CHARS, optional=True)
_token_string = string(_MAX_TOKEN_CHARS, optional=True)


def _check_token(value: object, key: str) -> None:
    if not is_int(value):
        _token_string.check(value, key)


def _check_resume_entry(room: object, seq: object) -> None:
    if not isinstance(room, str) or not is_valid_room(room):
        raise bad(f"cannot resume room {room!r}: bad room name", ErrorCode.BAD_ROOM)
    if not is_int(seq) or not 0 <= seq <= MAX_WIRE_INT:
        raise bad("'resume.rooms' values must be integers from 0 to 2**63-1")


def _check_resume(value: object, key: str) -> None:
    if value is None:
        return
    if not isinstance(value, Mapping):
        raise bad(f"'{key}' must be a mapping of room to seq")
    for room, seq in value.items():
        _check_resume_entry(room, seq)


def _read_resume(value: object, key: str) -> dict[str, int]:
    if not isinstance(value, dict):
        raise bad(f"'{key}' must be an object")
    rooms = value.get("rooms", {})
    if not isinstance(rooms, dict):
        raise bad(f"'{key}.rooms' must be an object")
    for room, seq in rooms.items():
        _check_resume_entry(room, seq)
    return dict(rooms)


def _write_resume(resume: Mapping[str, int]) -> JSONObject:
    return {"rooms": dict(resume)}


def _check_new_password(value: object, key: str) -> None:
    if not isinstance(value, str):
        raise bad(f"'{key}' is required" if value is None else f"'{key}' must be a string")
    if not MIN_PASSWORD_CHARS <= len(value) <= MAX_PASSWORD_CHARS:
        raise bad(f"'{key}' must be {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters")
    if has_lone_surrogate(value):
        raise bad(f"'{key}' is not valid Unicode text")


#: A password to register: 8-1024 characters.
NEW_PASSWORD: Final = Kind(_check_new_password)
#: A password presented in a hello: any string up to 1024 characters (a
#: wrong one is simply wrong: ``auth_failed``, never a hint about its length).
PASSWORD: Final = string(MAX_PASSWORD_CHARS, optional=True)

#: A ping's token, echoed by the pong: any integer or a short string.
TOKEN: Final = Kind(_check_token, absent=None, fast="v is None or type(v) is int")
#: ``hello.resume``: room -> highest seq seen, ``{"rooms": {...}}`` on the wire.
RESUME: Final = Kind(_check_resume, absent=None, to_wire=_write_resume, from_wire=_read_resume)


@wire_codec
@dataclass(frozen=True, slots=True)
class Hello(Request):
    """First frame of a session; ``resume`` maps room -> highest seq seen."""

    TYPE: ClassVar[str] = "hello"
    name: str = field(metadata=wire(USER_NAME))
    protocol: int = field(default=PROTOCOL_VERSION, metadata=wire(COUNT))
    session: str | None = field(
        default=None, metadata=wire(string(_MAX_SESSION_CHARS, optional=True))
    )
    resume: Mapping[str, int] | None = field(default=None, metadata=wire(RESUME))
    # Secrets: never in a repr, so never in a log line or a test failure.
    password: str | None = field(default=None, repr=False, metadata=wire(PASSWORD))
    server_password: str | None = field(default=None, repr=False, metadata=wire(PASSWORD))


@wire_codec
@dataclass(frozen=True, slots=True)
class Join(Request):
    """Join a room (creating it if nobody is in it)."""

    TYPE: ClassVar[str] = "join"
    room: str = field(metadata=wire(ROOM_NAME))


@wire_codec
@dataclass(frozen=True, slots=True)
class Part(Request):
    """Leave a room."""

    TYPE: ClassVar[str] = "part"
    room: str = field(metadata=wire(ROOM_NAME))


@wire_codec
@dataclass(frozen=True, slots=True)
class Who(Request):
    """Ask for a room's roster."""

    TYPE: ClassVar[str] = "who"
    room: str = field(metadata=wire(ROOM_NAME))


@wire_codec
@dataclass(frozen=True, slots=True)
class Rooms(Request):
    """Ask for the list of rooms that have members."""

    TYPE: ClassVar[str] = "rooms"


@wire_codec
@dataclass(frozen=True, slots=True)
class Say(Request):
    """Send ``text`` to a room; ``id`` makes retries idempotent."""

    TYPE: ClassVar[str] = "say"
    room: str = field(metadata=wire(ROOM_NAME))
    text: str = field(metadata=wire(TEXT))
    id: str | None = field(default=None, metadata=wire(MESSAGE_ID))
    action: bool = field(default=False, metadata=wire(FLAG))


@wire_codec
@dataclass(frozen=True, slots=True)
class WhisperTo(Request):
    """A private message to one user (wire type ``whisper``)."""

    TYPE: ClassVar[str] = "whisper"
    # Any string: a name that breaks the rules is simply nobody (no_such_user).
    to: str = field(metadata=wire(STRING))
    text: str = field(metadata=wire(TEXT))
    id: str | None = field(default=None, metadata=wire(MESSAGE_ID))
    action: bool = field(default=False, metadata=wire(FLAG))


@wire_codec
@dataclass(frozen=True, slots=True)
class HistoryQuery(Request):
    """Ask for stored messages of a room (wire type ``history``)."""

    TYPE: ClassVar[str] = "history"
    # The order version 0.1 wrote these members in; payloads stay byte-identical.
    WIRE_ORDER: ClassVar[tuple[str, ...]] = ("ref", "room", "limit", "after", "before")
    room: str = field(metadata=wire(ROOM_NAME))
    after: int | None = field(default=None, metadata=wire(integer(optional=True)))
    before: int | None = field(default=None, metadata=wire(integer(optional=True)))
    limit: int = field(
        default=DEFAULT_HISTORY_LIMIT,
        metadata=wire(integer(1, MAX_HISTORY_LIMIT, absent=DEFAULT_HISTORY_LIMIT)),
    )

    def check_combination(self) -> None:
        """A query pages one way: ``after`` and ``before`` exclude each other."""
        if self.after is not None and self.before is not None:
            raise bad("give 'after' or 'before', not both")


@wire_codec
@dataclass(frozen=True, slots=True)
class Nick(Request):
    """Change one's user name."""

    TYPE: ClassVar[str] = "nick"
    name: str = field(metadata=wire(USER_NAME))


@wire_codec
@dataclass(frozen=True, slots=True)
class Ping(Request):
    """Liveness probe, sent by either side; answered with :class:`Pong`."""

    TYPE: ClassVar[str] = "ping"
    token: str | int | None = field(default=None, metadata=wire(TOKEN))


@wire_codec
@dataclass(frozen=True, slots=True)
class Pong(Request):
    """Answer to :class:`Ping`, echoing its token."""

    TYPE: ClassVar[str] = "pong"
    token: str | int | None = field(default=None, metadata=wire(TOKEN))


@wire_codec
@dataclass(frozen=True, slots=True)
class Quit(Request):
    """Leave the server; ``reason`` is shown to the rooms one was in."""

    TYPE: ClassVar[str] = "quit"
    reason: str | None = field(default=None, metadata=wire(string(MAX_TEXT_CHARS, optional=True)))


@wire_codec
@dataclass(frozen=True, slots=True)
class Register(Request):
    """Register the current name with ``password`` (PROTOCOL 10)."""

    TYPE: ClassVar[str] = "register"
    password: str = field(repr=False, metadata=wire(NEW_PASSWORD))
