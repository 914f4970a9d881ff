"""Typed frames of the wire protocol: the catalogue, and parsing a payload into one.

One frozen, slotted dataclass per frame type: requests (what a client sends)
live in :mod:`~chattycat.protocol.requests`, events (what a server sends) in
:mod:`~chattycat.protocol.events`; ``ping`` and ``pong`` go both ways. Where a
type name is used in both directions with different members (``whisper``,
``history``) the request class has its own name (:class:`WhisperTo`,
:class:`HistoryQuery`). This module gathers them under one name, with the
naming rules and the payload codec, so that one import serves every layer.

A frame checks itself when built, as h11's events do: ``Say("NOT A ROOM",
"hi")`` raises :class:`~chattycat.errors.LocalProtocolError` (the calling
code has a bug). :func:`parse_request` applies the same checks to a peer's
payload and raises :class:`~chattycat.errors.RemoteProtocolError` carrying
the error code the protocol prescribes (``bad_room`` here) and the request's
``ref``, so a server answers bad input without an ``if`` of its own.
"""

from __future__ import annotations

from chattycat.protocol.codec import (
    MAX_REF_CHARS,
    PROTOCOL_VERSION,
    Event,
    Frame,
    Request,
    decode_payload,
    encode,
    parse_frame,
    read_object,
    to_payload,
)
from chattycat.protocol.events import (
    Error,
    History,
    Joined,
    Member,
    Message,
    Notice,
    Parted,
    Registered,
    Renamed,
    RoomInfo,
    RoomList,
    Roster,
    Welcome,
    Whisper,
)
from chattycat.protocol.fields import JSONObject
from chattycat.protocol.names import is_valid_name, is_valid_room, name_key
from chattycat.protocol.requests import (
    DEFAULT_HISTORY_LIMIT,
    MAX_HISTORY_LIMIT,
    MAX_ID_CHARS,
    MAX_TEXT_CHARS,
    Hello,
    HistoryQuery,
    Join,
    Nick,
    Part,
    Ping,
    Pong,
    Quit,
    Register,
    Rooms,
    Say,
    WhisperTo,
    Who,
)

__all__ = [
    "DEFAULT_HISTORY_LIMIT",
    "EVENT_TYPES",
    "MAX_HISTORY_LIMIT",
    "MAX_ID_CHARS",
    "MAX_REF_CHARS",
    "MAX_TEXT_CHARS",
    "PROTOCOL_VERSION",
    "REQUEST_TYPES",
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
    "Register",
    "Registered",
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

#: Wire type -> class, for every frame a server accepts.
REQUEST_TYPES: dict[str, type[Request]] = {
    cls.TYPE: cls
    for cls in (Hello, Join, Part, Who, Rooms, Say, WhisperTo, HistoryQuery, Nick, Ping, Pong,
                Quit, Register)
}  # fmt: skip
#: Wire type -> class, for every frame a client understands.
EVENT_TYPES: dict[str, type[Frame]] = {
    cls.TYPE: cls
    for cls in (Welcome, Message, Whisper, Joined, Parted, Roster, History, RoomList, Renamed,
                Notice, Error, Ping, Pong, Registered)
}  # fmt: skip


def parse_request(payload: bytes | JSONObject) -> Request:
    """Parse and validate a client's frame, raising RemoteProtocolError with its code."""
    frame: Request = parse_frame(payload, REQUEST_TYPES)
    return frame


def parse_event(payload: bytes | JSONObject) -> Frame | None:
    """Parse a server's frame; None for a type this version does not know (ignored)."""
    obj = read_object(payload)
    if obj["type"] not in EVENT_TYPES:
        return None
    frame: Frame = parse_frame(obj, EVENT_TYPES)
    return frame
