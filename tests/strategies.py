"""Hypothesis strategies for wire frames, built from the validity rules of PROTOCOL.md.

Every strategy here produces only *valid* values: a request drawn from
:data:`requests` survives ``parse_request(to_payload(r)) == r`` and an event
drawn from :data:`events` survives ``parse_event(to_payload(e)) == e``.
Strategies whose name says ``arbitrary`` produce junk for robustness tests.

    from tests.strategies import requests, events, messages_

``messages_`` (trailing underscore) is the strategy for ``message`` events, so
that it does not shadow the ``chattycat.protocol.messages`` module in an importer.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from chattycat.errors import ErrorCode
from chattycat.protocol.messages import (
    MAX_ID_CHARS,
    MAX_TEXT_CHARS,
    Error,
    Frame,
    Hello,
    History,
    HistoryQuery,
    Join,
    Joined,
    Member,
    Message,
    Nick,
    Notice,
    Part,
    Parted,
    Ping,
    Pong,
    Quit,
    Renamed,
    Request,
    RoomInfo,
    RoomList,
    Rooms,
    Roster,
    Say,
    Welcome,
    Whisper,
    WhisperTo,
    Who,
)

__all__ = [
    "EVENT_STRATEGIES",
    "KNOWN_EVENT_TYPES",
    "KNOWN_REQUEST_TYPES",
    "KNOWN_TYPES",
    "REQUEST_STRATEGIES",
    "arbitrary_json_objects",
    "arbitrary_json_values",
    "arbitrary_typed_objects",
    "colors",
    "events",
    "frames",
    "ids",
    "messages_",
    "names",
    "payload_lists",
    "payloads",
    "refs",
    "requests",
    "rooms",
    "seqs",
    "texts",
    "timestamps",
    "unicode_text",
]

# -- building blocks ----------------------------------------------------------

NAME_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
ROOM_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789_-"

# Any code point except surrogates: those cannot be encoded as UTF-8 (PROTOCOL 1).
unicode_chars = st.characters(exclude_categories=["Cs"])


def unicode_text(min_size: int = 0, max_size: int | None = None) -> st.SearchStrategy[str]:
    """Arbitrary Unicode text (control characters included) without surrogates."""
    return st.text(unicode_chars, min_size=min_size, max_size=max_size)


#: User names: 1-32 characters from ``A-Z a-z 0-9 _ -`` (PROTOCOL 2).
names = st.text(NAME_ALPHABET, min_size=1, max_size=32)
#: Room names: 1-32 characters from ``a-z 0-9 _ -`` (PROTOCOL 2).
rooms = st.text(ROOM_ALPHABET, min_size=1, max_size=32)
#: Message text: 1-4000 characters (PROTOCOL 5).
texts = unicode_text(min_size=1, max_size=MAX_TEXT_CHARS)
#: Client-chosen message ids: a string of at most 64 characters (PROTOCOL 5).
ids = unicode_text(max_size=MAX_ID_CHARS)
#: Request references: a string of at most 64 characters, or an integer (PROTOCOL 1).
refs: st.SearchStrategy[str | int | None] = (
    st.none() | st.integers(-(10**64) + 1, 10**64 - 1) | unicode_text(max_size=64)
)
#: Per-room message sequence numbers (start at 1, PROTOCOL 5).
seqs = st.integers(min_value=1, max_value=2**53)
#: Colors as the server assigns them: ``#rrggbb``.
colors = st.integers(0, 0xFFFFFF).map(lambda rgb: f"#{rgb:06x}")
#: Seconds since the epoch as a JSON number (finite: NaN is not JSON).
timestamps: st.SearchStrategy[float] = st.floats(
    min_value=0, max_value=2**34, allow_nan=False, allow_infinity=False
) | st.integers(0, 2**34)
tokens: st.SearchStrategy[str | int | None] = st.none() | st.integers() | unicode_text(max_size=64)
error_codes = st.sampled_from([str(code) for code in ErrorCode])
short_text = unicode_text(max_size=200)

# -- requests (client -> server) -----------------------------------------------

hellos = st.builds(
    Hello,
    name=names,
    protocol=st.integers(0, 2**31),
    session=st.none() | st.text(NAME_ALPHABET, max_size=64),
    resume=st.none() | st.dictionaries(rooms, st.integers(0, 2**53), max_size=5),
    ref=refs,
)
joins = st.builds(Join, room=rooms, ref=refs)
parts = st.builds(Part, room=rooms, ref=refs)
whos = st.builds(Who, room=rooms, ref=refs)
rooms_requests = st.builds(Rooms, ref=refs)
says = st.builds(Say, room=rooms, text=texts, id=st.none() | ids, action=st.booleans(), ref=refs)
whisper_tos = st.builds(
    WhisperTo, to=names, text=texts, id=st.none() | ids, action=st.booleans(), ref=refs
)
history_queries = st.builds(
    HistoryQuery,
    room=rooms,
    after=st.none() | st.integers(0, 2**53),
    limit=st.integers(1, 500),
    ref=refs,
) | st.builds(
    HistoryQuery,
    room=rooms,
    before=st.none() | st.integers(0, 2**53),
    limit=st.integers(1, 500),
    ref=refs,
)
nicks = st.builds(Nick, name=names, ref=refs)
pings = st.builds(Ping, token=tokens, ref=refs)
pongs = st.builds(Pong, token=tokens, ref=refs)
quits = st.builds(Quit, reason=st.none() | unicode_text(max_size=MAX_TEXT_CHARS), ref=refs)

#: One strategy per request class, to exercise every type on its own.
REQUEST_STRATEGIES: dict[type[Request], st.SearchStrategy[Any]] = {
    Hello: hellos,
    Join: joins,
    Part: parts,
    Who: whos,
    Rooms: rooms_requests,
    Say: says,
    WhisperTo: whisper_tos,
    HistoryQuery: history_queries,
    Nick: nicks,
    Ping: pings,
    Pong: pongs,
    Quit: quits,
}
#: Any valid request.
requests: st.SearchStrategy[Request] = st.one_of(*REQUEST_STRATEGIES.values())

# -- events (server -> client) ------------------------------------------------

welcomes = st.builds(
    Welcome,
    name=names,
    color=colors,
    session=st.text(NAME_ALPHABET, min_size=1, max_size=64),
    server=st.text(NAME_ALPHABET + ".", max_size=12).map(lambda version: f"chattycat/{version}"),
    max_frame=st.integers(0, 2**32 - 1),
    heartbeat=st.integers(0, 3600) | st.floats(0, 3600),
    protocol=st.just(1),
    ref=refs,
)


def _messages_in(room: str) -> st.SearchStrategy[Message]:
    return st.builds(
        Message,
        room=st.just(room),
        seq=seqs,
        sender=names,
        color=colors,
        text=texts,
        ts=timestamps,
        id=st.none() | ids,
        action=st.booleans(),
    )


#: ``message`` events (stored chat messages of a room).
messages_: st.SearchStrategy[Message] = rooms.flatmap(_messages_in)
whispers = st.builds(
    Whisper,
    sender=names,
    to=names,
    color=colors,
    text=texts,
    ts=timestamps,
    id=st.none() | ids,
    action=st.booleans(),
)
joineds = st.builds(Joined, room=rooms, name=names, color=colors, ts=timestamps)
parteds = st.builds(
    Parted,
    room=rooms,
    name=names,
    reason=st.sampled_from(["part", "quit", "disconnected"]) | short_text,
)
members = st.builds(Member, name=names, color=colors)
rosters = st.builds(
    Roster,
    room=rooms,
    members=st.lists(members, max_size=5).map(tuple),
    more=st.booleans(),
    ref=refs,
)
histories = rooms.flatmap(
    lambda room: st.builds(
        History,
        room=st.just(room),
        messages=st.lists(_messages_in(room), max_size=4).map(tuple),
        more=st.booleans(),
        truncated=st.booleans(),
        ref=refs,
    )
)
room_infos = st.builds(RoomInfo, room=rooms, members=st.integers(1, 10_000))
room_lists = st.builds(RoomList, rooms=st.lists(room_infos, max_size=5).map(tuple), ref=refs)
renameds = st.builds(Renamed, old=names, new=names, color=colors)
notices = st.builds(Notice, code=st.sampled_from(["shutdown", "motd"]) | names, text=short_text)
error_events = st.builds(Error, code=error_codes, message=short_text, ref=refs)

#: One strategy per event class (``ping``/``pong`` go both ways).
EVENT_STRATEGIES: dict[type[Frame], st.SearchStrategy[Any]] = {
    Welcome: welcomes,
    Message: messages_,
    Whisper: whispers,
    Joined: joineds,
    Parted: parteds,
    Roster: rosters,
    History: histories,
    RoomList: room_lists,
    Renamed: renameds,
    Notice: notices,
    Error: error_events,
    Ping: pings,
    Pong: pongs,
}
#: Any valid frame a server sends.
events: st.SearchStrategy[Any] = st.one_of(*EVENT_STRATEGIES.values())
#: Any valid frame, either direction.
frames: st.SearchStrategy[Any] = requests | events

KNOWN_REQUEST_TYPES = tuple(sorted(cls.TYPE for cls in REQUEST_STRATEGIES))
KNOWN_EVENT_TYPES = tuple(sorted(cls.TYPE for cls in EVENT_STRATEGIES))
KNOWN_TYPES = tuple(sorted(set(KNOWN_REQUEST_TYPES) | set(KNOWN_EVENT_TYPES)))

# -- framing --------------------------------------------------------------------

#: Frame payloads as opaque bytes (the codec does not look inside).
payloads = st.binary(max_size=300)
payload_lists = st.lists(payloads, max_size=20)

# -- junk, for "never raises anything but RemoteProtocolError" ------------------

# Every member name some frame type reads, so that junk often hits a parser's
# real fields with the wrong kind of value.
MEMBER_NAMES = (
    "name", "protocol", "session", "resume", "rooms", "room", "text", "id", "action",
    "to", "after", "before", "limit", "token", "reason", "ref", "color", "seq", "from",
    "ts", "members", "messages", "more", "truncated", "old", "new", "code", "message",
    "max_frame", "heartbeat", "server",
)  # fmt: skip

_json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()  # NaN and infinities included: json.dumps writes them, json.loads reads them
    | st.text(max_size=20)  # surrogates included: json.dumps escapes them as \udXXX
    | st.sampled_from(["", "lobby", "alice", "Dev", "#e06c75", "x" * 65])
)
_member_keys = st.sampled_from(MEMBER_NAMES) | st.text(max_size=8)

#: Any JSON value (nested lists and objects, keys biased to protocol member names).
arbitrary_json_values: st.SearchStrategy[Any] = st.recursive(
    _json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(_member_keys, children, max_size=5)
    ),
    max_leaves=25,
)
#: Any JSON object.
arbitrary_json_objects: st.SearchStrategy[dict[str, Any]] = st.dictionaries(
    _member_keys, arbitrary_json_values, max_size=8
)


@st.composite
def arbitrary_typed_objects(
    draw: st.DrawFn, types: tuple[str, ...] = KNOWN_TYPES
) -> dict[str, Any]:
    """A JSON object whose ``type`` is a known frame type and whose members are junk."""
    obj = draw(arbitrary_json_objects)
    obj["type"] = draw(st.sampled_from(types))
    return obj
