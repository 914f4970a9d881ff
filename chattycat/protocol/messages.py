"""Typed frames of the wire protocol: parse and validate JSON objects, serialize back.

Every frame type of PROTOCOL.md is a frozen, slotted dataclass. Requests are
what a client sends, events what a server sends; ``ping`` and ``pong`` go
both ways. Where a type name is used in both directions with different
members (``whisper``, ``history``) the request class has its own name
(:class:`WhisperTo`, :class:`HistoryQuery`).

:func:`parse_request` turns a payload into a request or raises
:class:`~chattycat.errors.RemoteProtocolError` carrying the error code the
protocol prescribes (and the request's ``ref`` when it could be read), so a
server answers bad input without a single ``if`` of its own.
"""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

from chattycat.errors import ErrorCode, ProtocolError, Ref, RemoteProtocolError
from chattycat.protocol.framing import encode_frame

__all__ = [
    "MAX_ID_CHARS",
    "MAX_REF_CHARS",
    "MAX_TEXT_CHARS",
    "PROTOCOL_VERSION",
    "Error",
    "Event",
    "Frame",
    "Hello",
    "History",
    "HistoryQuery",
    "Join",
    "Joined",
    "Member",
    "Message",
    "Nick",
    "Notice",
    "Part",
    "Parted",
    "Ping",
    "Pong",
    "Quit",
    "Renamed",
    "Request",
    "RoomInfo",
    "RoomList",
    "Rooms",
    "Roster",
    "Say",
    "Welcome",
    "Whisper",
    "WhisperTo",
    "Who",
    "decode_payload",
    "encode",
    "is_valid_name",
    "is_valid_room",
    "name_key",
    "parse_event",
    "parse_request",
    "to_payload",
]

PROTOCOL_VERSION = 1
MAX_TEXT_CHARS = 4000
MAX_ID_CHARS = 64
MAX_REF_CHARS = 64
MAX_HISTORY_LIMIT = 500
DEFAULT_HISTORY_LIMIT = 50

_NAME_RE = re.compile(r"[A-Za-z0-9_-]{1,32}")
_ROOM_RE = re.compile(r"[a-z0-9_-]{1,32}")
# Lone surrogates survive json.loads ("\ud800") but cannot be encoded as UTF-8,
# so a string holding one could never be sent on; reject it at the door.
_SURROGATE_RE = re.compile("[\ud800-\udfff]")

JSONObject = dict[str, Any]


def is_valid_name(name: str) -> bool:
    """True for a user name of 1-32 characters from ``A-Z a-z 0-9 _ -``."""
    return _NAME_RE.fullmatch(name) is not None


def is_valid_room(room: str) -> bool:
    """True for a room name of 1-32 characters from ``a-z 0-9 _ -``."""
    return _ROOM_RE.fullmatch(room) is not None


def name_key(name: str) -> str:
    """The case-insensitive identity of a user name (names are ASCII)."""
    return name.lower()


# --------------------------------------------------------------------------
# Field readers: each raises the protocol's error code for a bad value.


def _bad(message: str, code: ErrorCode = ErrorCode.BAD_REQUEST) -> RemoteProtocolError:
    return RemoteProtocolError(code, message)


def _is_int(value: object) -> bool:
    # bool is an int subclass in Python, but `true` is not a number in JSON.
    return isinstance(value, int) and not isinstance(value, bool)


def _opt_str(obj: JSONObject, key: str, max_chars: int | None = None) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _bad(f"'{key}' must be a string")
    if max_chars is not None and len(value) > max_chars:
        raise _bad(f"'{key}' is longer than {max_chars} characters")
    if _SURROGATE_RE.search(value):
        raise _bad(f"'{key}' is not valid Unicode text")
    return value


def _str(obj: JSONObject, key: str, max_chars: int | None = None) -> str:
    value = _opt_str(obj, key, max_chars)
    if value is None:
        raise _bad(f"'{key}' is required")
    return value


def _opt_int(obj: JSONObject, key: str, lo: int = 0, hi: int | None = None) -> int | None:
    value = obj.get(key)
    if value is None:
        return None
    if not _is_int(value):
        raise _bad(f"'{key}' must be an integer")
    if value < lo or (hi is not None and value > hi):
        raise _bad(f"'{key}' is out of range")
    return int(value)


def _int(obj: JSONObject, key: str, lo: int = 0, hi: int | None = None) -> int:
    value = _opt_int(obj, key, lo, hi)
    if value is None:
        raise _bad(f"'{key}' is required")
    return value


def _bool(obj: JSONObject, key: str) -> bool:
    value = obj.get(key, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise _bad(f"'{key}' must be true or false")
    return value


def _number(obj: JSONObject, key: str) -> float:
    value = obj.get(key)
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise _bad(f"'{key}' must be a number")
    return value


def _name(obj: JSONObject, key: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        raise _bad(f"'{key}' must be a string")
    if not is_valid_name(value):
        raise _bad("names are 1-32 characters from A-Z a-z 0-9 _ -", ErrorCode.BAD_NAME)
    return value


def _room(obj: JSONObject, key: str = "room") -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        raise _bad(f"'{key}' must be a string")
    if not is_valid_room(value):
        raise _bad("room names are 1-32 characters from a-z 0-9 _ -", ErrorCode.BAD_ROOM)
    return value


def _ref(obj: JSONObject) -> Ref:
    value = obj.get("ref")
    # Integer refs are bounded like string ones (64 digits), so echoing one in a
    # reply can never push that reply past max_frame.
    if value is None or (_is_int(value) and abs(value) < 10**MAX_REF_CHARS):
        return value
    if isinstance(value, str) and len(value) <= MAX_REF_CHARS and not _SURROGATE_RE.search(value):
        return value
    raise _bad("'ref' must be an integer or a string of at most 64 characters")


def _text(obj: JSONObject) -> str:
    text = _str(obj, "text", MAX_TEXT_CHARS)
    if not text:
        raise _bad("'text' must not be empty")
    return text


def _token(obj: JSONObject) -> str | int | None:
    value = obj.get("token")
    if value is None or _is_int(value):
        return value
    return _opt_str(obj, "token", 256)


def _put(out: JSONObject, key: str, value: object) -> None:
    """Set an optional member, leaving it out when it has no value."""
    if value is not None and value is not False:
        out[key] = value


# --------------------------------------------------------------------------
# Frames


@dataclass(frozen=True, slots=True)
class Frame(ABC):
    """Base of every frame: ``TYPE`` is the wire ``type``."""

    TYPE: ClassVar[str] = ""

    @abstractmethod
    def to_dict(self) -> JSONObject:
        """The JSON object for this frame (optional members left out when unset)."""


@dataclass(frozen=True, slots=True)
class Request(Frame):
    """A frame a client sends; ``ref`` is echoed in the server's direct replies."""

    ref: Ref = field(default=None, kw_only=True)

    def _base(self) -> JSONObject:
        out: JSONObject = {"type": self.TYPE}
        _put(out, "ref", self.ref)
        return out


@dataclass(frozen=True, slots=True)
class Event(Frame):
    """A frame a server sends."""


@dataclass(frozen=True, slots=True)
class Hello(Request):
    """First frame of a session; ``resume`` maps room -> highest seq seen."""

    TYPE: ClassVar[str] = "hello"
    name: str
    protocol: int = PROTOCOL_VERSION
    session: str | None = None
    resume: Mapping[str, int] | None = None

    @classmethod
    def from_dict(cls, obj: JSONObject) -> Hello:
        name = _name(obj, "name")
        protocol = _int(obj, "protocol")
        session = _opt_str(obj, "session", 256)
        resume = _parse_resume(obj.get("resume"))
        return cls(name, protocol, session, resume)

    def to_dict(self) -> JSONObject:
        out = self._base() | {"name": self.name, "protocol": self.protocol}
        _put(out, "session", self.session)
        if self.resume is not None:
            out["resume"] = {"rooms": dict(self.resume)}
        return out


def _parse_resume(value: object) -> dict[str, int] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _bad("'resume' must be an object")
    rooms = value.get("rooms", {})
    if not isinstance(rooms, dict):
        raise _bad("'resume.rooms' must be an object")
    resume: dict[str, int] = {}
    for room, seq in rooms.items():
        if not is_valid_room(room):
            raise _bad(f"cannot resume room {room!r}: bad room name", ErrorCode.BAD_ROOM)
        if not _is_int(seq) or seq < 0:
            raise _bad("'resume.rooms' values must be integers >= 0")
        resume[room] = seq
    return resume


@dataclass(frozen=True, slots=True)
class Join(Request):
    """Join a room (creating it if nobody is in it)."""

    TYPE: ClassVar[str] = "join"
    room: str

    @classmethod
    def from_dict(cls, obj: JSONObject) -> Join:
        return cls(_room(obj))

    def to_dict(self) -> JSONObject:
        return self._base() | {"room": self.room}


@dataclass(frozen=True, slots=True)
class Part(Request):
    """Leave a room."""

    TYPE: ClassVar[str] = "part"
    room: str

    @classmethod
    def from_dict(cls, obj: JSONObject) -> Part:
        return cls(_room(obj))

    def to_dict(self) -> JSONObject:
        return self._base() | {"room": self.room}


@dataclass(frozen=True, slots=True)
class Who(Request):
    """Ask for a room's roster."""

    TYPE: ClassVar[str] = "who"
    room: str

    @classmethod
    def from_dict(cls, obj: JSONObject) -> Who:
        return cls(_room(obj))

    def to_dict(self) -> JSONObject:
        return self._base() | {"room": self.room}


@dataclass(frozen=True, slots=True)
class Rooms(Request):
    """Ask for the list of rooms that have members."""

    TYPE: ClassVar[str] = "rooms"

    @classmethod
    def from_dict(cls, obj: JSONObject) -> Rooms:
        return cls()

    def to_dict(self) -> JSONObject:
        return self._base()


@dataclass(frozen=True, slots=True)
class Say(Request):
    """Send ``text`` to a room; ``id`` makes retries idempotent."""

    TYPE: ClassVar[str] = "say"
    room: str
    text: str
    id: str | None = None
    action: bool = False

    @classmethod
    def from_dict(cls, obj: JSONObject) -> Say:
        room = _room(obj)
        text = _text(obj)
        return cls(room, text, _opt_str(obj, "id", MAX_ID_CHARS), _bool(obj, "action"))

    def to_dict(self) -> JSONObject:
        out = self._base() | {"room": self.room, "text": self.text}
        _put(out, "id", self.id)
        _put(out, "action", self.action)
        return out


@dataclass(frozen=True, slots=True)
class WhisperTo(Request):
    """A private message to one user (wire type ``whisper``)."""

    TYPE: ClassVar[str] = "whisper"
    to: str
    text: str
    id: str | None = None
    action: bool = False

    @classmethod
    def from_dict(cls, obj: JSONObject) -> WhisperTo:
        to = _str(obj, "to")
        text = _text(obj)
        return cls(to, text, _opt_str(obj, "id", MAX_ID_CHARS), _bool(obj, "action"))

    def to_dict(self) -> JSONObject:
        out = self._base() | {"to": self.to, "text": self.text}
        _put(out, "id", self.id)
        _put(out, "action", self.action)
        return out


@dataclass(frozen=True, slots=True)
class HistoryQuery(Request):
    """Ask for stored messages of a room (wire type ``history``)."""

    TYPE: ClassVar[str] = "history"
    room: str
    after: int | None = None
    before: int | None = None
    limit: int = DEFAULT_HISTORY_LIMIT

    @classmethod
    def from_dict(cls, obj: JSONObject) -> HistoryQuery:
        room = _room(obj)
        after = _opt_int(obj, "after")
        before = _opt_int(obj, "before")
        if after is not None and before is not None:
            raise _bad("give 'after' or 'before', not both")
        limit = _opt_int(obj, "limit", 1, MAX_HISTORY_LIMIT)
        return cls(room, after, before, DEFAULT_HISTORY_LIMIT if limit is None else limit)

    def to_dict(self) -> JSONObject:
        out = self._base() | {"room": self.room, "limit": self.limit}
        _put(out, "after", self.after)
        _put(out, "before", self.before)
        return out


@dataclass(frozen=True, slots=True)
class Nick(Request):
    """Change one's user name."""

    TYPE: ClassVar[str] = "nick"
    name: str

    @classmethod
    def from_dict(cls, obj: JSONObject) -> Nick:
        return cls(_name(obj, "name"))

    def to_dict(self) -> JSONObject:
        return self._base() | {"name": self.name}


@dataclass(frozen=True, slots=True)
class Ping(Request):
    """Liveness probe, sent by either side; answered with :class:`Pong`."""

    TYPE: ClassVar[str] = "ping"
    token: str | int | None = None

    @classmethod
    def from_dict(cls, obj: JSONObject) -> Ping:
        return cls(_token(obj))

    def to_dict(self) -> JSONObject:
        out = self._base()
        _put(out, "token", self.token)
        return out


@dataclass(frozen=True, slots=True)
class Pong(Request):
    """Answer to :class:`Ping`, echoing its token."""

    TYPE: ClassVar[str] = "pong"
    token: str | int | None = None

    @classmethod
    def from_dict(cls, obj: JSONObject) -> Pong:
        return cls(_token(obj))

    def to_dict(self) -> JSONObject:
        out = self._base()
        _put(out, "token", self.token)
        return out


@dataclass(frozen=True, slots=True)
class Quit(Request):
    """Leave the server; ``reason`` is shown to the rooms one was in."""

    TYPE: ClassVar[str] = "quit"
    reason: str | None = None

    @classmethod
    def from_dict(cls, obj: JSONObject) -> Quit:
        return cls(_opt_str(obj, "reason", MAX_TEXT_CHARS))

    def to_dict(self) -> JSONObject:
        out = self._base()
        _put(out, "reason", self.reason)
        return out


# -- events -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Welcome(Event):
    """The server's answer to a successful :class:`Hello`."""

    TYPE: ClassVar[str] = "welcome"
    name: str
    color: str
    session: str
    server: str
    max_frame: int
    heartbeat: float
    protocol: int = PROTOCOL_VERSION
    ref: Ref = None

    @classmethod
    def from_dict(cls, obj: JSONObject) -> Welcome:
        return cls(
            _str(obj, "name"), _str(obj, "color"), _str(obj, "session"), _str(obj, "server"),
            _int(obj, "max_frame"), _number(obj, "heartbeat"), _int(obj, "protocol"), _ref(obj),
        )

    def to_dict(self) -> JSONObject:
        out: JSONObject = {
            "type": self.TYPE, "name": self.name, "color": self.color,
            "protocol": self.protocol, "server": self.server, "session": self.session,
            "max_frame": self.max_frame, "heartbeat": self.heartbeat,
        }
        _put(out, "ref", self.ref)
        return out


@dataclass(frozen=True, slots=True)
class Message(Event):
    """A stored chat message of a room; the sender's copy is its acknowledgement."""

    TYPE: ClassVar[str] = "message"
    room: str
    seq: int
    sender: str  # "from" on the wire, which is a Python keyword
    color: str
    text: str
    ts: float
    id: str | None = None
    action: bool = False

    @classmethod
    def from_dict(cls, obj: JSONObject) -> Message:
        return cls(
            _str(obj, "room"), _int(obj, "seq"), _str(obj, "from"), _str(obj, "color"),
            _str(obj, "text"), _number(obj, "ts"), _opt_str(obj, "id"), _bool(obj, "action"),
        )

    def to_dict(self) -> JSONObject:
        out: JSONObject = {
            "type": self.TYPE, "room": self.room, "seq": self.seq, "from": self.sender,
            "color": self.color, "text": self.text, "ts": self.ts,
        }
        _put(out, "id", self.id)
        _put(out, "action", self.action)
        return out


@dataclass(frozen=True, slots=True)
class Whisper(Event):
    """A private message as delivered to its sender and its recipient."""

    TYPE: ClassVar[str] = "whisper"
    sender: str
    to: str
    color: str
    text: str
    ts: float
    id: str | None = None
    action: bool = False

    @classmethod
    def from_dict(cls, obj: JSONObject) -> Whisper:
        return cls(
            _str(obj, "from"), _str(obj, "to"), _str(obj, "color"), _str(obj, "text"),
            _number(obj, "ts"), _opt_str(obj, "id"), _bool(obj, "action"),
        )

    def to_dict(self) -> JSONObject:
        out: JSONObject = {
            "type": self.TYPE, "from": self.sender, "to": self.to, "color": self.color,
            "text": self.text, "ts": self.ts,
        }
        _put(out, "id", self.id)
        _put(out, "action", self.action)
        return out


@dataclass(frozen=True, slots=True)
class Joined(Event):
    """Someone (possibly you) joined a room."""

    TYPE: ClassVar[str] = "joined"
    room: str
    name: str
    color: str
    ts: float

    @classmethod
    def from_dict(cls, obj: JSONObject) -> Joined:
        return cls(_str(obj, "room"), _str(obj, "name"), _str(obj, "color"), _number(obj, "ts"))

    def to_dict(self) -> JSONObject:
        return {"type": self.TYPE, "room": self.room, "name": self.name,
                "color": self.color, "ts": self.ts}


@dataclass(frozen=True, slots=True)
class Parted(Event):
    """Someone left a room: ``reason`` is ``part``, ``disconnected`` or a quit text."""

    TYPE: ClassVar[str] = "parted"
    room: str
    name: str
    reason: str

    @classmethod
    def from_dict(cls, obj: JSONObject) -> Parted:
        return cls(_str(obj, "room"), _str(obj, "name"), _str(obj, "reason"))

    def to_dict(self) -> JSONObject:
        return {"type": self.TYPE, "room": self.room, "name": self.name, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class Member:
    """One entry of a roster."""

    name: str
    color: str

    def to_dict(self) -> JSONObject:
        return {"name": self.name, "color": self.color}


@dataclass(frozen=True, slots=True)
class Roster(Event):
    """The members of a room, sorted by name case-insensitively."""

    TYPE: ClassVar[str] = "roster"
    room: str
    members: tuple[Member, ...]
    more: bool = False
    ref: Ref = None

    @classmethod
    def from_dict(cls, obj: JSONObject) -> Roster:
        raw = obj.get("members")
        if not isinstance(raw, list):
            raise _bad("'members' must be a list")
        members = tuple(Member(_str(m, "name"), _str(m, "color")) for m in _objects(raw))
        return cls(_str(obj, "room"), members, _bool(obj, "more"), _ref(obj))

    def to_dict(self) -> JSONObject:
        out: JSONObject = {"type": self.TYPE, "room": self.room,
                           "members": [m.to_dict() for m in self.members]}
        _put(out, "more", self.more)
        _put(out, "ref", self.ref)
        return out


@dataclass(frozen=True, slots=True)
class History(Event):
    """Stored messages of a room, oldest first."""

    TYPE: ClassVar[str] = "history"
    room: str
    messages: tuple[Message, ...]
    more: bool = False
    truncated: bool = False
    ref: Ref = None

    @classmethod
    def from_dict(cls, obj: JSONObject) -> History:
        raw = obj.get("messages")
        if not isinstance(raw, list):
            raise _bad("'messages' must be a list")
        messages = tuple(Message.from_dict(m) for m in _objects(raw))
        return cls(_str(obj, "room"), messages, _bool(obj, "more"), _bool(obj, "truncated"),
                   _ref(obj))

    def to_dict(self) -> JSONObject:
        out: JSONObject = {"type": self.TYPE, "room": self.room,
                           "messages": [m.to_dict() for m in self.messages]}
        _put(out, "more", self.more)
        _put(out, "truncated", self.truncated)
        _put(out, "ref", self.ref)
        return out


@dataclass(frozen=True, slots=True)
class RoomInfo:
    """One entry of a room list."""

    room: str
    members: int

    def to_dict(self) -> JSONObject:
        return {"room": self.room, "members": self.members}


@dataclass(frozen=True, slots=True)
class RoomList(Event):
    """The rooms that have members, sorted by name."""

    TYPE: ClassVar[str] = "room_list"
    rooms: tuple[RoomInfo, ...]
    more: bool = False
    ref: Ref = None

    @classmethod
    def from_dict(cls, obj: JSONObject) -> RoomList:
        raw = obj.get("rooms")
        if not isinstance(raw, list):
            raise _bad("'rooms' must be a list")
        rooms = tuple(RoomInfo(_str(r, "room"), _int(r, "members")) for r in _objects(raw))
        return cls(rooms, _bool(obj, "more"), _ref(obj))

    def to_dict(self) -> JSONObject:
        out: JSONObject = {"type": self.TYPE, "rooms": [r.to_dict() for r in self.rooms]}
        _put(out, "more", self.more)
        _put(out, "ref", self.ref)
        return out


@dataclass(frozen=True, slots=True)
class Renamed(Event):
    """A user changed name."""

    TYPE: ClassVar[str] = "renamed"
    old: str
    new: str
    color: str

    @classmethod
    def from_dict(cls, obj: JSONObject) -> Renamed:
        return cls(_str(obj, "old"), _str(obj, "new"), _str(obj, "color"))

    def to_dict(self) -> JSONObject:
        return {"type": self.TYPE, "old": self.old, "new": self.new, "color": self.color}


@dataclass(frozen=True, slots=True)
class Notice(Event):
    """A server-wide announcement (``code`` ``shutdown`` before a graceful stop)."""

    TYPE: ClassVar[str] = "notice"
    code: str
    text: str

    @classmethod
    def from_dict(cls, obj: JSONObject) -> Notice:
        return cls(_str(obj, "code"), _str(obj, "text"))

    def to_dict(self) -> JSONObject:
        return {"type": self.TYPE, "code": self.code, "text": self.text}


@dataclass(frozen=True, slots=True)
class Error(Event):
    """An error reply; ``ref`` echoes the request it answers."""

    TYPE: ClassVar[str] = "error"
    code: str
    message: str
    ref: Ref = None
    # The `id` of the say or whisper refused, so a client knows which of its
    # pending messages will never be acknowledged (an extra member: allowed).
    id: str | None = None

    @classmethod
    def from_exception(cls, exc: ProtocolError, id: str | None = None) -> Error:
        """The frame that answers a protocol error."""
        return cls(str(exc.code), exc.message, exc.ref, id)

    @classmethod
    def from_dict(cls, obj: JSONObject) -> Error:
        return cls(
            _str(obj, "code"), _opt_str(obj, "message") or "", _ref(obj), _opt_str(obj, "id")
        )

    def to_dict(self) -> JSONObject:
        out: JSONObject = {"type": self.TYPE, "code": self.code, "message": self.message}
        _put(out, "ref", self.ref)
        _put(out, "id", self.id)
        return out


def _objects(items: list[Any]) -> list[JSONObject]:
    if not all(isinstance(item, dict) for item in items):
        raise _bad("list entries must be objects")
    return items


# --------------------------------------------------------------------------
# Parsing and serialization

_Parser = Callable[[JSONObject], Any]

_REQUESTS: dict[str, _Parser] = {
    cls.TYPE: cls.from_dict
    for cls in (Hello, Join, Part, Who, Rooms, Say, WhisperTo, HistoryQuery, Nick, Ping, Pong,
                Quit)
}
_EVENTS: dict[str, _Parser] = {
    cls.TYPE: cls.from_dict
    for cls in (Welcome, Message, Whisper, Joined, Parted, Roster, History, RoomList, Renamed,
                Notice, Error, Ping, Pong)
}


def _reject_constant(name: str) -> Any:
    # json.loads accepts NaN and Infinity, which RFC 8259 JSON does not have.
    raise ValueError(f"{name} is not JSON")


def decode_payload(payload: bytes) -> JSONObject:
    """A payload's JSON object; ``bad_frame`` unless it is a UTF-8 JSON object with a type."""
    try:
        obj = json.loads(payload.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise _bad("payload is not UTF-8 JSON", ErrorCode.BAD_FRAME) from None
    return _check_typed(obj)


def _check_typed(obj: object) -> JSONObject:
    if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
        raise _bad("payload is not a JSON object with a string 'type'", ErrorCode.BAD_FRAME)
    return obj


def _parse(obj: JSONObject, parsers: Mapping[str, _Parser]) -> Any:
    parser = parsers.get(obj["type"])
    kind: str = obj["type"]
    shown = kind if len(kind) <= 40 else kind[:40] + "..."  # the reply must stay small
    unknown = _bad(f"unknown frame type {shown!r}", ErrorCode.UNKNOWN_TYPE)
    try:
        ref = _ref(obj)
    except RemoteProtocolError:
        # An unusable ref cannot be echoed; the error is reported without it.
        if parser is None:
            raise unknown from None
        raise
    if parser is None:
        raise unknown.with_ref(ref)
    try:
        frame = parser(obj)
    except RemoteProtocolError as exc:
        raise exc.with_ref(ref) from None
    if isinstance(frame, Request) and ref is not None:
        frame = replace(frame, ref=ref)
    return frame


def parse_request(payload: bytes | JSONObject) -> Request:
    """Parse and validate a client's frame, raising RemoteProtocolError with its code."""
    obj = decode_payload(payload) if isinstance(payload, bytes) else _check_typed(payload)
    frame: Request = _parse(obj, _REQUESTS)
    return frame


def parse_event(payload: bytes | JSONObject) -> Frame | None:
    """Parse a server's frame; None for a type this version does not know (ignored)."""
    obj = decode_payload(payload) if isinstance(payload, bytes) else _check_typed(payload)
    if obj["type"] not in _EVENTS:
        return None
    frame: Frame = _parse(obj, _EVENTS)
    return frame


def to_payload(frame: Frame) -> bytes:
    """A frame's JSON payload: compact, UTF-8, not ASCII-escaped."""
    return json.dumps(
        frame.to_dict(), separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def encode(frame: Frame) -> bytes:
    """A frame ready for the wire: length header and payload."""
    return encode_frame(to_payload(frame))
